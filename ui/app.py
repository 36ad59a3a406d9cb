"""The Gradio app. `Handlers` holds the logic (tested directly); `build_app` only wires it up."""

import json
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from html import escape

from assistant.answer import Answer, Assistant
from assistant.errors import AssistantError
from assistant.library import rebuild, source
from assistant.settings import MODES, Settings
from ui.login import Login
from ui.render import CSS, LANGUAGE_NAMES, answer_html, citation_label, source_html, status_markdown

EXAMPLES = [
    "Hur många socialsekreterare arbetar i Stockholms stad?",
    "Hvem er faglig koordinator i Billund Kommune?",
    "What did Farsta introduce to reduce stress?",
]
# The app has no upload component; this caps what Gradio's upload route accepts from anyone.
MAX_UPLOAD = "1kb"
FEEDBACK_HIGHLIGHT_CHARS = 160  # of the top passage's marked sentence(s): enough for a test query
SCROLL_TO_PASSAGE = (
    "() => { const m = document.querySelector('#cited-passage'); if (m) m.scrollIntoView({block: 'center'}); }"
)


class Handlers:
    """Everything the page does, without Gradio: each method takes and returns plain values."""

    def __init__(self, settings: Settings, embedder=None):
        self.settings = settings
        self.embedder = embedder
        self.error: str | None = None
        self.assistant: Assistant | None = None
        self._feedback_lock = threading.Lock()
        self._rebuild_lock = threading.Lock()
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
    ):
        """One turn: returns (history, answers, citation choices)."""
        history, answers = list(history or []), list(answers or [])
        try:
            if self.assistant is None:
                raise AssistantError(self.error or "The index is not loaded.")
            answer = self.assistant.ask(
                message,
                k=k,
                history=history,
                mode=mode,
                languages=languages or None,
                article_ids=self._article_ids(articles),
            )
            content, entry = answer_html(answer), answer
        except AssistantError as exc:
            content, entry = _notice(exc), None
        history += [{"role": "user", "content": message or ""}, {"role": "assistant", "content": content}]
        answers += [None, entry]
        return history, answers, self.citation_choices(entry)

    @staticmethod
    def citation_choices(answer: Answer | None) -> list[str]:
        if answer is None or answer.no_answer:
            return []
        return [citation_label(h) for h in answer.hits]

    def _article_ids(self, titles: list[str] | None) -> list[str] | None:
        if not titles or self.assistant is None:
            return None
        return [a.id for a in self.assistant.index.articles.values() if a.title in titles]

    # --- sources ---------------------------------------------------------------------------
    def open_source(self, choice: str | None, answers: list) -> str:
        """The source of the chosen citation of the latest answer, passage marked."""
        answer = next((a for a in reversed(answers or []) if a is not None), None)
        if not choice or answer is None:
            return ""
        hit = next((h for h in answer.hits if citation_label(h) == choice), None)
        if hit is None:
            return ""
        try:
            if self.assistant is None:
                raise AssistantError(self.error or "The index is not loaded.")
            view = source(self.assistant, hit.citation)
        except AssistantError as exc:
            return _notice(exc)
        notice = _notice(view.notice) if view.notice else ""
        return notice + source_html(view.text, view.title, view.source, view.start, view.end, view.window)

    # --- feedback --------------------------------------------------------------------------
    def feedback(self, message_index: int, liked: bool | None, answers: list) -> str:
        """Append one small line per verdict (question, chunk ids, citations; no passage texts), up to
        the size limit."""
        answer = answers[message_index] if 0 <= message_index < len(answers or []) else None
        if answer is None or liked is None:
            return ""
        row = {
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
            "question": answer.question,
            "verdict": "up" if liked else "down",
            "no_answer": answer.no_answer,
            "passages": [_feedback_passage(h, top=h is answer.hits[0]) for h in answer.hits],
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
        return "Thanks — feedback saved."

    # --- API and index panel ---------------------------------------------------------------
    def api_ask(self, question: str, k: int = 5) -> dict:
        """The `ask` endpoint: the answer as JSON-ready dicts. A bad argument or a missing index raises
        AssistantError, which `build_app` turns into an error whose message reaches the client."""
        if self.assistant is None:
            raise AssistantError(self.error or "The index is not loaded.")
        return self.assistant.ask(question, k=k).to_dict()

    def status(self) -> str:
        if self.assistant is None:
            return f"⚠️ {self.error}"
        return status_markdown(self.assistant.index.manifest)

    def rebuild(self, say=lambda _: None) -> str:
        if not self._rebuild_lock.acquire(blocking=False):
            return "A rebuild is already running."
        try:
            report = rebuild(self.settings, self.embedder, say=say)
        except AssistantError as exc:
            return f"⚠️ Rebuild failed: {exc}"
        finally:
            self._rebuild_lock.release()
        self.reload()
        return (
            f"Rebuilt: {len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} "
            f"removed, {len(report.reused)} reused; {report.embedded} passages embedded.\n\n{self.status()}"
        )

    def languages(self) -> list[str]:
        return list(self.assistant.index.manifest.languages) if self.assistant else []

    def article_titles(self) -> list[str]:
        return sorted({a.title for a in self.assistant.index.articles.values()}) if self.assistant else []


def _feedback_passage(hit, top: bool) -> dict:
    """A passage in a feedback line: ids and citation; the top one also its title and (cut) highlight,
    which `assistant feedback-queries` turns into a test query. Titles and languages of the others
    are in the index under their article_id."""
    citation = asdict(hit.citation)
    title, language = citation.pop("title"), citation.pop("language")
    row = {"rank": hit.rank, "score": round(hit.score, 4), "chunk_id": hit.chunk_id, "citation": citation}
    if top:
        row.update(title=title, language=language, highlight=hit.highlight_text[:FEEDBACK_HIGHLIGHT_CHARS])
    return row


def _notice(message) -> str:
    return f'<p class="notice">{escape(str(message))}</p>'


def build_app(handlers: Handlers):
    import gradio as gr

    class Blocks(gr.Blocks):
        def validate_inputs(self, block_fn, inputs):
            """Too few values (an API call missing an argument): say so in words the client sees;
            Gradio's own message is meant for developers and reaches the client as null."""
            try:
                super().validate_inputs(block_fn, inputs)
            except ValueError:
                wanted = "question and k" if block_fn.name == "ask" else f"{len(block_fn.inputs)} values"
                raise gr.Error(f"Missing argument: send {wanted} (got {len(inputs)}).", print_exception=False) from None

    with Blocks(title="Nordic article assistant") as app:
        gr.Markdown(
            "## Nordic article assistant\nAsk in Swedish, Danish or English; answers are passages "
            "from the articles with numbered citations. Pick a citation below to open its source."
        )
        if handlers.error:
            gr.Markdown(f"⚠️ **{handlers.error}**", elem_id="index-error")
        answers = gr.State([])
        with gr.Row():
            with gr.Column(scale=3, min_width=300):
                chatbot = gr.Chatbot(label="Conversation", height=520, elem_id="chat")
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Ask a question…", show_label=False, scale=5, elem_id="question", max_length=100_000
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=60, elem_id="ask-button")
                with gr.Row():
                    examples = [gr.Button(text, size="sm", elem_classes="example") for text in EXAMPLES]
                citations = gr.Radio(choices=[], label="Open a source", elem_id="citations")
                source = gr.HTML(elem_id="source-view")
                feedback_note = gr.Markdown(elem_id="feedback-note")
            with gr.Column(scale=1, min_width=220):
                k = gr.Slider(1, 10, value=5, step=1, label="Passages (k)")
                mode = gr.Radio(list(MODES), value=handlers.settings.mode, label="Retrieval mode")
                languages = gr.CheckboxGroup(
                    handlers.languages(),
                    label="Languages",
                    info=", ".join(LANGUAGE_NAMES.get(x, x) for x in handlers.languages()),
                )
                articles = gr.Dropdown(handlers.article_titles(), multiselect=True, label="Only these articles")
                with gr.Accordion("Index", open=False):
                    status = gr.Markdown(handlers.status(), elem_id="index-status")
                    rebuild = gr.Button("Rebuild index", size="sm")

        def chat_turn(message, history, state, k_, mode_, langs, arts):
            history, state, choices = handlers.respond(message, history, state, k_, mode_, langs, arts)
            return history, state, gr.update(choices=choices, value=None), "", ""

        outputs = [chatbot, answers, citations, question, source]
        controls = [k, mode, languages, articles]
        # Two questions may run at once (2 cores); a rebuild has its own queue and never blocks them.
        for trigger in (question.submit, send.click):
            trigger(
                chat_turn,
                [question, chatbot, answers, *controls],
                outputs,
                concurrency_limit=2,
                concurrency_id="ask",
                api_visibility="private",
            )
        for button, text in zip(examples, EXAMPLES):
            button.click(
                lambda h, s, *c, t=text: chat_turn(t, h, s, *c),
                [chatbot, answers, *controls],
                outputs,
                concurrency_id="ask",
                api_visibility="private",
            )
        citations.change(handlers.open_source, [citations, answers], source, api_visibility="private").then(
            None, js=SCROLL_TO_PASSAGE
        )

        def like(data: gr.LikeData, state):
            index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
            return handlers.feedback(int(index), data.liked, state)

        chatbot.like(like, [answers], feedback_note, api_visibility="private")

        def do_rebuild(progress=gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's way to ask for progress
            progress(0, desc="Rebuilding index")
            return handlers.rebuild()

        rebuild.click(do_rebuild, None, status, concurrency_id="rebuild", concurrency_limit=1, api_visibility="private")

        def ask(question: str, k: int = 5) -> dict:
            """Cited passages for a question: {"question", "no_answer", "passages": [...]}."""
            try:
                return handlers.api_ask(question, k)
            except AssistantError as exc:
                raise gr.Error(str(exc), print_exception=False) from None

        gr.api(ask, api_name="ask", concurrency_id="ask", concurrency_limit=2)
    return app


def launch_options(settings: Settings) -> dict:
    """Gradio `launch` arguments: login (throttled) when configured, a tiny upload limit, no error details."""
    credentials = settings.credentials
    return {
        "auth": Login(*credentials) if credentials else None,
        "max_file_size": MAX_UPLOAD,
        "css": CSS,
        "show_error": False,  # our own errors (gr.Error) still reach the page and the API client
        "footer_links": ["api"],
    }


def serve(settings: Settings, host: str, port: int) -> None:
    handlers = Handlers(settings)
    if handlers.assistant:
        handlers.assistant.embedder.encode_query("warm up")  # load the model now, not on the first question
    app = build_app(handlers).queue(default_concurrency_limit=2)
    app.launch(server_name=host, server_port=port, **launch_options(settings))
