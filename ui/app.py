"""The Gradio app. `Handlers` holds the logic (tested directly); `build_app` only wires it up."""

import inspect
import json
import shutil
import tempfile
import threading
import weakref
from dataclasses import asdict
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import quote

from assistant.answer import Answer, Assistant, Hit
from assistant.errors import AssistantError, QuestionError, SettingsError
from assistant.library import UPLOAD_SUFFIXES, add_files, rebuild, source
from assistant.settings import MODES, Settings
from ui.login import Login
from ui.originals import CorpusFiles
from ui.render import CSS, LANGUAGE_NAMES, answer_html, markdown, markdown_text, source_html, status_markdown

EXAMPLES = [
    "Hur många socialsekreterare arbetar i Stockholms stad?",
    "Hvem er faglig koordinator i Billund Kommune?",
    "What did Farsta introduce to reduce stress?",
]
UPLOAD_TYPES = list(UPLOAD_SUFFIXES)  # .pdf and .docx too: the page refused them, though the loader reads them
_UPLOAD_NAMES = ", ".join(UPLOAD_TYPES)
FEEDBACK_HIGHLIGHT_CHARS = 160  # of the passage's marked sentence(s): enough for a test query
SOURCE_HINT = '<p class="hint">Click a citation [n] or a passage title to open its article here.</p>'
# The page's script: links and buttons inside the chat (plain HTML there) carry class act-<what>; "copy" and
# "context" happen in the page, the others are sent to Python through the hidden #ui-action box.
PAGE_JS = """
<script>
(() => {
  const copy = (text) => {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    const box = document.createElement('textarea');
    box.value = text; document.body.appendChild(box); box.select(); document.execCommand('copy'); box.remove();
    return Promise.resolve();
  };
  const part = (el, name) => {
    const found = el.className.split(' ').find((c) => c.startsWith(name + '-'));
    return found && found.slice(name.length + 1);
  };
  document.addEventListener('click', (event) => {
    const el = event.target.closest('.act');
    if (!el) return;
    event.preventDefault();
    const act = part(el, 'act');
    if (act === 'copy') {
      copy(el.title).then(() => { el.textContent = 'Copied ✓'; });
      return;
    }
    if (act === 'context') {
      const on = el.closest('.hit-card').classList.toggle('with-context');
      el.textContent = on ? 'Less context' : 'More context';
      return;
    }
    if (act === 'up' || act === 'down') {
      el.parentElement.querySelectorAll('.fb').forEach((b) => b.classList.remove('chosen'));
      el.classList.add('chosen');
    }
    const box = document.querySelector('#ui-action textarea, #ui-action input');
    box.value = [act, part(el, 'turn'), part(el, 'rank'), Date.now()].join(':');
    box.dispatchEvent(new Event('input', {bubbles: true}));
    setTimeout(() => document.querySelector('#ui-action-go').click(), 30);
  });
})();
</script>
"""
# After an answer: scroll the chat (not the page) so the newest answer starts at its top.
SCROLL_TO_NEWEST = """() => { const show = () => {
  const all = document.querySelectorAll('#chat .answer, #chat .notice');
  const last = all[all.length - 1]; if (!last) return;
  let box = last.parentElement;
  while (box && box.scrollHeight <= box.clientHeight + 1) box = box.parentElement;
  if (box) box.scrollTop += last.getBoundingClientRect().top - box.getBoundingClientRect().top - 48;
}; [100, 400, 1000].forEach((ms) => setTimeout(show, ms)); }"""  # again once late images/fonts shift it
SCROLL_TO_PASSAGE = """() => { const show = () => {
  const m = document.querySelector('#source-view mark.cited-passage');
  if (m) m.scrollIntoView({block: 'center'});
}; [60, 400].forEach((ms) => setTimeout(show, ms)); }"""  # on a phone the panel is below: the page scrolls too


class Handlers:
    """Everything the page does, without Gradio: each method takes and returns plain values."""

    def __init__(self, settings: Settings, embedder=None):
        self.settings = settings
        self.embedder = embedder
        self.error: str | None = None
        self.assistant: Assistant | None = None
        self._feedback_lock = threading.Lock()
        self._rebuild_lock = threading.Lock()
        self._exports: Path | None = None  # made at the first export, removed with the handlers (Gradio copies)
        self._sources: tuple[Assistant | None, frozenset[str]] = (None, frozenset())
        self.reload()

    def reload(self) -> None:
        """(Re)open the index; a problem becomes a message on the page instead of a crash."""
        try:
            assistant = Assistant.open(settings=self.settings, embedder=self.embedder)
        except AssistantError as exc:
            self.error = str(exc)
            return
        self.embedder = assistant.embedder
        self.assistant, self.error = assistant, None  # one assignment: questions in flight keep the old one

    def _ready(self) -> Assistant:
        if self.assistant is None:
            raise AssistantError(self.error or "The index is not loaded.")
        return self.assistant

    # --- chat -----------------------------------------------------------------------------
    def respond(
        self,
        message: str,
        history: list[dict],
        answers: list,
        k: int = 5,
        mode: str = "hybrid",
        languages: list[str] | None = None,
        articles: list[str] | None = None,
        since: str = "",
        until: str = "",
        author: str = "",
    ):
        """One turn: returns (history, answers); `answers[i]` is the Answer shown as chat message i.
        `since`/`until` (YYYY[-MM[-DD]]) and `author` filter by the articles' dates and authors."""
        history, answers = list(history or []), list(answers or [])
        try:
            assistant = self._ready()
            answer = assistant.ask(
                message,
                k=k,
                history=history,
                mode=mode,
                languages=languages or None,
                article_ids=self._article_ids(articles),
                since=(since or "").strip() or None,
                until=(until or "").strip() or None,
                author=(author or "").strip() or None,
            )
            content, entry = answer_html(answer, len(history) + 1, self._contexts(assistant, answer)), answer
        except AssistantError as exc:
            content, entry = _notice(exc), None
        history += [{"role": "user", "content": message or ""}, {"role": "assistant", "content": content}]
        answers += [None, entry]
        return history, answers

    @staticmethod
    def _contexts(assistant: Assistant, answer: Answer) -> dict:
        """chunk id -> (text of the passage before it, after it) in the same article, for "More context"."""
        if answer.no_answer:
            return {}
        out = {}
        for hit in answer.hits:
            around = assistant.context(hit.chunk_id, 1, 1)
            at = next(i for i, c in enumerate(around) if c.id == hit.chunk_id)
            out[hit.chunk_id] = ("\n".join(c.text for c in around[:at]), "\n".join(c.text for c in around[at + 1 :]))
        return out

    def _article_ids(self, titles: list[str] | None) -> list[str] | None:
        if not titles or self.assistant is None:
            return None
        ids = [a.id for a in self.assistant.index.articles.values() if a.title in titles]
        if not ids:  # an empty list would be no filter at all: the whole corpus answered, silently
            raise QuestionError("The chosen articles are no longer in the index (it was rebuilt): choose again.")
        return ids

    @staticmethod
    def _hit(answers: list, turn, rank) -> tuple[Answer, Hit] | None:
        """The answer shown as chat message `turn` and its passage `rank`, if both exist."""
        try:
            turn, rank = int(turn), int(rank)
        except (TypeError, ValueError):
            return None
        answer = answers[turn] if 0 <= turn < len(answers or []) else None
        hit = next((h for h in answer.hits if h.rank == rank), None) if answer is not None else None
        return (answer, hit) if hit is not None else None

    # --- sources ---------------------------------------------------------------------------
    def open_source(self, answers: list, turn, rank) -> str:
        """The article of passage `rank` of chat message `turn`, the passage marked."""
        found = self._hit(answers, turn, rank)
        if found is None:
            return SOURCE_HINT
        answer, hit = found
        if self.assistant is not None and not self.assistant.holds(hit.chunk_id):
            # Its offsets point into the file as it was: they would mark other text now.
            return _notice("The index was rebuilt since this answer and no longer holds this passage: ask again.")
        try:
            view = source(self._ready(), hit.citation)
        except AssistantError as exc:
            return _notice(exc)
        notice = _notice(view.notice) if view.notice else ""
        heading = f'<span class="cite-num">[{hit.rank}]</span> of {len(answer.hits)} · '
        html = source_html(view.text, view.title, view.source, view.start, view.end, view.window, heading)
        return notice + original_link(view) + html

    def step_source(self, answers: list, where: list | None, delta: int) -> tuple[str, list | None]:
        """Previous (-1) or next (+1) citation of the answer whose source is open: (html, new position)."""
        if not where or self._hit(answers, where[0], where[1]) is None:
            return SOURCE_HINT, where
        answer, _ = self._hit(answers, *where)
        rank = min(max(1, int(where[1]) + delta), len(answer.hits))
        return self.open_source(answers, where[0], rank), [where[0], rank]

    # --- actions from the chat's links and buttons -------------------------------------------
    def action(self, command: str, answers: list, where: list | None) -> tuple[str | None, str | None, list | None]:
        """One click inside the chat, as "act:turn:rank:nonce": opens a source or records a verdict.
        Returns (source html or None to keep it, feedback note or None, source position)."""
        act, turn, rank = ((command or "").split(":") + ["", "", ""])[:3]
        if act == "source":
            return self.open_source(answers, turn, rank), None, [turn, rank]
        if act in ("up", "down"):
            return None, self.feedback(answers, turn, rank, act == "up"), where
        return None, None, where

    # --- feedback --------------------------------------------------------------------------
    def feedback(self, answers: list, turn, rank, liked: bool) -> str:
        """Append one line for a 👍/👎 on one passage: question, passage id, citation, its marked sentence,
        index version and time; up to the size limit."""
        found = self._hit(answers, turn, rank)
        if found is None:
            return ""
        answer, hit = found
        if self.assistant is None or not self.assistant.holds(hit.chunk_id):
            # The line names the index it was given on: one rebuilt without the passage would be named wrongly.
            return "Feedback not saved: the index was rebuilt since this answer and no longer holds the passage."
        row = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "question": answer.question,
            "verdict": "up" if liked else "down",
            "chunk_id": hit.chunk_id,
            "citation": asdict(hit.citation),
            "highlight": hit.highlight_text[:FEEDBACK_HIGHLIGHT_CHARS],
            "index_version": self.index_version(),
        }
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        path, limit = self.settings.feedback_file, self.settings.feedback_max_bytes
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with self._feedback_lock:
                if path.exists() and path.stat().st_size + len(line) > limit:
                    return (
                        f"Feedback not saved: {path.name} has reached its limit of {limit:,} bytes "
                        "(ASSISTANT_FEEDBACK_MAX_BYTES). Ask the operator to move the file away."
                    )
                with path.open("ab") as fh:  # one line per verdict, appended
                    fh.write(line)
        except OSError as exc:
            return f"Feedback not saved: cannot write {path} ({exc.strerror or exc})."
        return f"Thanks — feedback on [{hit.rank}] {markdown_text(hit.citation.title)} saved."

    def index_version(self) -> str:
        """When the index in use was built (its manifest's built_at): feedback and exports name it."""
        return self.assistant.index.manifest.built_at if self.assistant else ""

    # --- keep and share --------------------------------------------------------------------
    def export(self, answers: list) -> str | None:
        """The conversation as a Markdown file (a new one per call); None before the first answer."""
        if not any(a is not None for a in answers or []):
            return None
        if self._exports is None:  # made once, not per page start: thousands of empty folders piled up in /tmp
            self._exports = Path(tempfile.mkdtemp(prefix="assistant-export-"))
            weakref.finalize(self, shutil.rmtree, self._exports, ignore_errors=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")
        path = self._exports / f"conversation-{stamp}.md"
        path.write_text(markdown(answers, self.index_version()), encoding="utf-8")
        return str(path)

    # --- adding articles -------------------------------------------------------------------
    def upload(self, files: list | None, say=lambda _: None) -> str:
        """Add uploaded files to the corpus folder and, if any was new, rebuild the index; one message
        saying what was added, what was already there and what was refused and why."""
        files = [f for f in files or [] if f]
        if not files:
            return f"Choose one or more files first ({_UPLOAD_NAMES})."
        named = [(getattr(f, "orig_name", None) or Path(str(f)).name, Path(str(f))) for f in files]
        report = add_files(self.settings, named)
        md = markdown_text  # the names are the user's
        lines = [f"Added {md(p)}." for p in report.added]
        lines += [
            f"{md(name)}: already in the corpus as {md(where)}; not added again." for name, where in report.duplicates
        ]
        lines += [f"{md(name)}: not added — {why}." for name, why in report.rejected]
        if report.added:
            heard = []  # the build's own lines: why it left an added file out (the same text as an article, ...)
            lines.append(self.rebuild(lambda text: (heard.append(str(text)), say(text)), with_status=False))
            for path in (p for p in report.added if not self.is_original(p)):
                why = next((line for line in heard if path in line), "the loader left it out")
                lines.append(f"{md(path)} is in the corpus folder but not indexed: {md(why)}")
        return "\n\n".join(lines)

    # --- API and index panel ---------------------------------------------------------------
    def api_ask(self, question: str, k: int = 5, since: str = "", until: str = "", author: str = "") -> dict:
        """The `ask` endpoint: the answer as JSON-ready dicts, with the short answer and its [n] markers
        and each passage's relevance label; optional date range and author filters. A bad argument or a
        missing index raises AssistantError, which `build_app` turns into an error the client reads."""
        filters = {"since": since, "until": until, "author": author}
        if not all(isinstance(v, str | None) for v in filters.values()):
            raise QuestionError("since, until and author must be text (e.g. since='2019-09').")
        chosen = {name: value.strip() for name, value in filters.items() if value and value.strip()}
        return self._ready().ask(question, k=k, **chosen).to_dict()

    def status(self) -> str:
        if self.assistant is None:
            return f"⚠️ {self.error}"
        return status_markdown(self.assistant.index.manifest)

    def rebuild(self, say=lambda _: None, with_status: bool = True) -> str:
        """Rebuild the index (only what changed is embedded) and switch to it; one message saying what
        changed, followed by the index status unless `with_status` is False."""
        if not self._rebuild_lock.acquire(blocking=False):
            return "A rebuild is already running."
        try:
            report = rebuild(self.settings, self.embedder, say=say)
        except AssistantError as exc:
            return f"⚠️ Rebuild failed: {markdown_text(str(exc))}"
        finally:
            self._rebuild_lock.release()
        self.reload()
        return (
            f"Rebuilt: {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} "
            f"removed, {len(report.reused)} reused; {report.embedded} sentence windows embedded."
            + (f"\n\n{self.status()}" if with_status else "")
        )

    def languages(self) -> list[str]:
        return list(self.assistant.index.manifest.languages) if self.assistant else []

    def is_original(self, relative: str) -> bool:
        """Whether `relative` (a path in the corpus folder) is the original file of an indexed article."""
        assistant = self.assistant
        if assistant is None:
            return False
        if self._sources[0] is not assistant:  # once per index, not per request
            self._sources = (assistant, frozenset(a.source for a in assistant.index.articles.values()))
        return relative in self._sources[1]

    def article_titles(self) -> list[str]:
        return sorted({a.title for a in self.assistant.index.articles.values()}) if self.assistant else []


def _language_names(handlers: Handlers) -> str:
    """The index's languages by name, for the language filter's help line."""
    return ", ".join(LANGUAGE_NAMES.get(x, x) for x in handlers.languages())


def _notice(message) -> str:
    return f'<p class="notice">{escape(str(message))}</p>'


def build_app(handlers: Handlers):
    import gradio as gr

    class Blocks(gr.Blocks):
        def validate_inputs(self, block_fn, inputs):
            """A raw API call to `ask` may leave out the arguments after the question: they take their defaults
            (gradio_client fills them in itself). Too few values otherwise: say so in words the client sees;
            Gradio's own message is meant for developers and reaches the client as null."""
            if block_fn.name == "ask" and inputs:
                inputs.extend(ask_defaults[len(inputs) - 1 :])
            try:
                super().validate_inputs(block_fn, inputs)
            except ValueError:
                wanted = "at least the question" if block_fn.name == "ask" else f"{len(block_fn.inputs)} values"
                raise gr.Error(f"Missing argument: send {wanted} (got {len(inputs)}).", print_exception=False) from None

    with Blocks(title="Nordic article assistant") as app:
        gr.Markdown(
            "## Nordic article assistant\nAsk in Swedish, Danish or English. You get a short answer quoted from "
            "the articles, then the passages it comes from; click a [n] or a title to read the article beside "
            "the chat."
        )
        if handlers.error:
            gr.Markdown(f"⚠️ **{handlers.error}**", elem_id="index-error")
        answers = gr.State([])
        where = gr.State(None)  # [turn, rank] of the passage open in the source panel
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                # No maths rendering: "$x$" in an article is text, not a formula.
                chatbot = gr.Chatbot(
                    label="Conversation", height=600, elem_id="chat", autoscroll=False, latex_delimiters=[]
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question…", show_label=False, scale=5, elem_id="question", max_length=100_000
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=60, elem_id="ask-button")
                with gr.Row():
                    examples = [gr.Button(text, size="sm", elem_classes="example") for text in EXAMPLES]
                feedback_note = gr.Markdown(elem_id="feedback-note")
                download = gr.DownloadButton(
                    "Download conversation (Markdown)", size="sm", elem_id="download", interactive=False
                )
                with gr.Accordion("Search options", open=False):
                    k = gr.Slider(1, 10, value=5, step=1, label="Passages (k)")
                    mode = gr.Radio(list(MODES), value=handlers.settings.mode, label="Retrieval mode")
                    languages = gr.CheckboxGroup(
                        handlers.languages(), label="Languages", info=_language_names(handlers)
                    )
                    articles = gr.Dropdown(handlers.article_titles(), multiselect=True, label="Only these articles")
                    with gr.Row():
                        since = gr.Textbox(label="Published from", placeholder="YYYY[-MM[-DD]]", elem_id="since")
                        until = gr.Textbox(label="Published until", placeholder="YYYY[-MM[-DD]]", elem_id="until")
                    author = gr.Textbox(label="Author contains", elem_id="author")
                with gr.Accordion("Add articles and index", open=False, elem_id="library"):
                    uploads = gr.File(
                        label=f"Add articles: {_UPLOAD_NAMES} (up to {handlers.settings.max_upload_mb:g} MB each)",
                        file_count="multiple",
                        file_types=UPLOAD_TYPES,
                        elem_id="upload",
                    )
                    add = gr.Button("Add to the library and rebuild", size="sm", elem_id="add-button")
                    upload_note = gr.Markdown(elem_id="upload-note")
                    status = gr.Markdown(handlers.status(), elem_id="index-status")
                    rebuild = gr.Button("Rebuild index", size="sm")
            with gr.Column(scale=2, min_width=300, elem_id="source-column"):
                gr.Markdown("### Source")
                with gr.Row():
                    previous = gr.Button("◀ Previous citation", size="sm", elem_id="source-previous", min_width=80)
                    following = gr.Button("Next citation ▶", size="sm", elem_id="source-next", min_width=80)
                source_view = gr.HTML(SOURCE_HINT, elem_id="source-view")
        action = gr.Textbox(visible="hidden", elem_id="ui-action")
        action_go = gr.Button(visible="hidden", elem_id="ui-action-go")

        def chat_turn(message, history, state, k_, mode_, langs, arts, since_, until_, author_):
            history, state = handlers.respond(message, history, state, k_, mode_, langs, arts, since_, until_, author_)
            path = handlers.export(state)
            return history, state, gr.update(value=path, interactive=path is not None)

        def take(message):
            """The question leaves the box at once, and the box waits for the answer: text typed meanwhile was
            neither asked nor kept (the answer's arrival cleared it)."""
            return gr.update(value="", interactive=False), gr.update(interactive=False), message

        asked = gr.State("")
        outputs = [chatbot, answers, download]
        controls = [k, mode, languages, articles, since, until, author]
        # Two questions may run at once (2 cores); a rebuild has its own queue and never blocks them.
        for trigger in (question.submit, send.click):
            trigger(take, [question], [question, send, asked], queue=False, api_visibility="private").then(
                chat_turn,
                [asked, chatbot, answers, *controls],
                outputs,
                concurrency_limit=2,
                concurrency_id="ask",
                api_visibility="private",
            ).then(  # .then runs whether or not the answer succeeded: the box is never left locked
                lambda: (gr.update(interactive=True), gr.update(interactive=True)),
                None,
                [question, send],
                queue=False,
                api_visibility="private",
            ).then(None, js=SCROLL_TO_NEWEST)
        for button, text in zip(examples, EXAMPLES):
            button.click(
                lambda h, s, *c, t=text: chat_turn(t, h, s, *c),
                [chatbot, answers, *controls],
                outputs,
                concurrency_id="ask",
                api_visibility="private",
            ).then(None, js=SCROLL_TO_NEWEST)

        # The chat's own clear button empties the conversation: the answers behind it go too, or a new answer's
        # [1], 👍 and download would act on the cleared one.
        chatbot.clear(
            lambda: ([], None, SOURCE_HINT, "", gr.update(value=None, interactive=False)),
            None,
            [answers, where, source_view, feedback_note, download],
            queue=False,
            api_visibility="private",
        )

        def on_action(command, state, at):
            html, note, at = handlers.action(command, state, at)
            return gr.update() if html is None else html, gr.update() if note is None else note, at

        action_go.click(
            on_action, [action, answers, where], [source_view, feedback_note, where], api_visibility="private"
        ).then(None, js=SCROLL_TO_PASSAGE)
        for button, delta in ((previous, -1), (following, 1)):
            button.click(
                lambda state, at, d=delta: handlers.step_source(state, at, d),
                [answers, where],
                [source_view, where],
                api_visibility="private",
            ).then(None, js=SCROLL_TO_PASSAGE)

        def choices(chosen_articles=None, chosen_languages=None):
            """The filters' choices as the index in use has them (another tab may have rebuilt it), keeping only
            the chosen values still among them: a stale one made the next question fail in Gradio's checks."""
            titles, langs = handlers.article_titles(), handlers.languages()
            return (
                gr.update(choices=titles, value=[t for t in chosen_articles or [] if t in titles]),
                gr.update(
                    choices=langs,
                    value=[x for x in chosen_languages or [] if x in langs],
                    info=_language_names(handlers),
                ),
            )

        # A page opened after a rebuild shows that index's status and choices, not those of the app's start.
        app.load(lambda: (handlers.status(), *choices()), None, [status, articles, languages], api_visibility="private")

        def do_rebuild(chosen_articles, chosen_languages, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
            progress(0, desc="Rebuilding index")
            return handlers.rebuild(), *choices(chosen_articles, chosen_languages)

        rebuild.click(
            do_rebuild,
            [articles, languages],
            [status, articles, languages],
            concurrency_id="rebuild",
            concurrency_limit=1,
            api_visibility="private",
        )

        def do_upload(files, chosen_articles, chosen_languages, progress=gr.Progress(track_tqdm=True)):  # noqa: B008
            progress(0, desc="Adding articles")
            note = handlers.upload(files, say=lambda text: progress(None, desc=str(text)[:80]))
            return note, handlers.status(), *choices(chosen_articles, chosen_languages), None

        # The button waits while its files are added: a second click added them again ("already in the
        # corpus") and that report replaced the first one's.
        add.click(lambda: gr.update(interactive=False), None, add, queue=False, api_visibility="private").then(
            do_upload,
            [uploads, articles, languages],
            [upload_note, status, articles, languages, uploads],
            concurrency_id="rebuild",
            concurrency_limit=1,
            api_visibility="private",
        ).then(lambda: gr.update(interactive=True), None, add, queue=False, api_visibility="private")

        def ask(question: str, k: int = 5, since: str = "", until: str = "", author: str = "") -> dict:
            """A short cited answer and the passages for a question: {"question", "no_answer", "short_answer"
            (sentences with [n] markers), "passages": [{"rank", "label", "confidence", "citation", ...}]};
            `since`/`until` (YYYY[-MM[-DD]]) and `author` keep only articles dated or written so."""
            try:
                return handlers.api_ask(question, k, since, until, author)
            except AssistantError as exc:
                raise gr.Error(str(exc), print_exception=False) from None

        gr.api(ask, api_name="ask", concurrency_id="ask", concurrency_limit=2)
        ask_defaults = [p.default for p in list(inspect.signature(ask).parameters.values())[1:]]  # after the question
    return app


def original_link(view) -> str:
    """A link to the cited file itself (a PDF opens at the passage's page), served from the corpus folder."""
    if view.original is None:
        return ""
    page = f"#page={view.page}" if view.page else ""
    where = f" at page {view.page}" if view.page else ""
    url = f"/gradio_api/file={quote(str(view.original))}{page}"
    link = f'<a href="{escape(url)}" target="_blank" rel="noopener">Open the original file{where}</a>'
    return f'<p class="original">{link}</p>'


def launch_options(settings: Settings, is_article=lambda relative: False) -> dict:
    """Gradio `launch` arguments: login (throttled) when configured, uploads capped at the upload setting,
    the page's script, no error details; of the corpus folder only the files `is_article` names are served,
    sandboxed (ui/originals.py)."""
    from starlette.middleware import Middleware

    credentials = settings.credentials
    return {
        "app_kwargs": {"middleware": [Middleware(CorpusFiles, corpus_dir=settings.corpus_dir, is_article=is_article)]},
        "auth": Login(*credentials) if credentials else None,
        "max_file_size": f"{int(settings.max_upload_mb * 1024)}kb",
        # "Open the original file" links point into the corpus folder, and only there.
        "allowed_paths": [str(settings.corpus_dir.resolve())],
        "css": CSS,
        "head": PAGE_JS,
        "show_error": False,  # our own errors (gr.Error) still reach the page and the API client
        "footer_links": ["api"],
    }


def serve(settings: Settings, host: str, port: int) -> None:
    handlers = Handlers(settings)
    if handlers.assistant:
        handlers.assistant.embedder.encode_query("warm up")  # load the model now, not on the first question
    app = build_app(handlers).queue(default_concurrency_limit=2)
    try:
        app.launch(server_name=host, server_port=port, **launch_options(settings, handlers.is_original))
    except OSError as exc:  # the port was taken since `assistant serve` checked it
        raise SettingsError(f"Cannot serve on {host}:{port} ({exc}): choose another --port or --host.") from None
