"""`omni-mer demo`: a Gradio chat where a visitor uploads a video (or picks a shipped sample) and talks about it.

Structure follows QwenLM/Qwen2.5-Omni's web_demo.py: ``_get_args`` → ``_load_pipeline`` (models loaded once, at
start) → ``build_demo`` → ``_launch``. The UI logic lives in ``DemoApp`` (plain Python, unit-tested without a
browser); ``build_demo`` only wires it to Gradio components.

Privacy and safety defaults: bound to 127.0.0.1, Gradio analytics off, no share link, system fonts only (nothing is
fetched from the network), upload size and duration limits, and every failure becomes a readable chat message (the
traceback goes to the server log, never to the browser).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

# Before gradio is imported anywhere: no telemetry, no version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from omni_mer.core.answer import rationale_text  # noqa: E402
from omni_mer.core.i18n import language_code  # noqa: E402
from omni_mer.demo.chat import ChatContext, EvidenceAnswerer, make_answerer  # noqa: E402
from omni_mer.core.config import MEDIA_EXTENSIONS, VIDEO_EXTENSIONS  # noqa: E402
from omni_mer.core.errors import MediaError, OmniMerError  # noqa: E402
from omni_mer.core.labels import LABEL_NAMES, LABEL_VALENCE, LABELS  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 200.0
DEFAULT_MAX_DURATION_S = 120.0
SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "Noto Sans", "Noto Sans CJK SC", "WenQuanYi Micro Hei",
                "DejaVu Sans", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "DejaVu Sans Mono", "Menlo", "Consolas", "monospace"]

# ------------------------------------------------------------------------------------------------ UI text

UI: dict[str, dict[str, str]] = {
    "en": {
        "title": "## omni-mer · explainable multimodal sentiment\n"
                 "Upload a short video (English or Mandarin) or pick a sample. The model reads **what was said**, "
                 "**how it was said** and **the face**, gives one of five labels and explains itself. "
                 "Then ask follow-up questions.",
        "lang": "Language / 语言",
        "video": "Video",
        "samples": "Samples — click one to analyse it",
        "probs": "Label probabilities",
        "chat": "Conversation",
        "question": "Your question",
        "placeholder": "Ask a follow-up, e.g. why not positive?",
        "send": "Ask",
        "clear": "Clear",
        "chart": "Explanation: modality contributions (Shapley), probabilities, cue timeline",
        "suggest": "Try asking",
        "q_why_not": "Why not positive?",
        "q_why_not_neg": "Why not negative?",
        "q_voice": "What did the voice do?",
        "q_face": "What did the face show?",
        "q_said": "What was said?",
        "q_most": "Which modality mattered most?",
        "analysing": "Analysing {name}… (speech recognition, voice, face, then all 8 modality coalitions)",
        "uploaded": "▶ {name}",
        "result": "**Label: {code} · {en} · {zh}** (p = {p:.2f})",
        "probs_head": "Probabilities",
        "why_head": "Why",
        "follow": "The chart below shows each modality's contribution and the cue timeline. "
                  "Ask me a follow-up question.",
        "took": "Analysed in {s:.1f} s · backend: {backend}",
        "too_large": "This file is {size:.1f} MB; the limit is {limit:.0f} MB. Please upload a shorter or "
                     "smaller video.",
        "too_long": "This video is {dur:.0f} s long; the limit is {limit:.0f} s. Please trim it and try again.",
        "bad_ext": "“{name}” is not a supported video or audio file (expected one of: {exts}).",
        "bad_file": "Sorry, this file could not be read: {reason}{detail}.",
        "failed": "Sorry, something went wrong while analysing this file ({kind}). The details were written to "
                  "the server log.",
        "no_file": "Please upload a video first.",
    },
    "zh": {
        "title": "## omni-mer · 可解释的多模态情感识别\n"
                 "上传一段短视频（英语或普通话）或选择一个示例。模型会分析**说了什么**、**怎么说的**以及**面部表情**，"
                 "给出五类情感标签之一并解释原因。之后可以继续提问。",
        "lang": "Language / 语言",
        "video": "视频",
        "samples": "示例——点击即可分析",
        "probs": "标签概率",
        "chat": "对话",
        "question": "你的问题",
        "placeholder": "继续提问，例如：为什么不是积极？",
        "send": "提问",
        "clear": "清空",
        "chart": "解释：各模态贡献（Shapley）、概率、线索时间轴",
        "suggest": "可以这样问",
        "q_why_not": "为什么不是积极？",
        "q_why_not_neg": "为什么不是消极？",
        "q_voice": "语音表现如何？",
        "q_face": "面部表情如何？",
        "q_said": "说了什么？",
        "q_most": "哪个模态最重要？",
        "analysing": "正在分析 {name}……（语音识别、语音、面部，然后是全部 8 个模态组合）",
        "uploaded": "▶ {name}",
        "result": "**标签：{code} · {zh} · {en}**（p = {p:.2f}）",
        "probs_head": "概率",
        "why_head": "理由",
        "follow": "下方图表展示了各模态的贡献和线索时间轴。欢迎继续提问。",
        "took": "分析用时 {s:.1f} 秒 · 后端：{backend}",
        "too_large": "文件大小为 {size:.1f} MB，上限为 {limit:.0f} MB。请上传更短或更小的视频。",
        "too_long": "视频时长为 {dur:.0f} 秒，上限为 {limit:.0f} 秒。请剪短后重试。",
        "bad_ext": "“{name}”不是支持的视频或音频文件（支持：{exts}）。",
        "bad_file": "抱歉，无法读取这个文件：{reason}{detail}。",
        "failed": "抱歉，分析这个文件时出错了（{kind}）。详细信息已写入服务器日志。",
        "no_file": "请先上传视频。",
    },
}
# Chinese wording of the typed media errors (their English reasons live in omni_mer.core.errors).
_ZH_REASON = {
    "MissingFileError": "文件不存在", "EmptyFileError": "文件为空（0 字节）", "NotMediaError": "不是媒体文件",
    "NoStreamError": "没有可解码的音频或视频流", "CorruptMediaError": "文件已损坏或被截断，没有可用内容",
    "DecodeTimeoutError": "解码超时",
}
QUESTION_KEYS = ("q_why_not", "q_voice", "q_face", "q_said", "q_most")


def why_not_question(state: dict | None, lang: str) -> str:
    """The suggested "why not …?" question: towards the opposite pole of the current label."""
    label = ((state or {}).get("explanation") or {}).get("label")
    positive = label is not None and LABEL_VALENCE.get(label, 0.0) > 0
    return t("q_why_not_neg" if positive else "q_why_not", lang)


def t(key: str, lang: str = "en", **kw) -> str:
    """UI string ``key`` in ``lang`` (en/zh), formatted with ``kw``."""
    return UI[language_code(lang)][key].format(**kw)


class UploadError(OmniMerError):
    """An upload the demo refuses (too large, too long, wrong type); ``message(lang)`` is shown in the chat."""

    def __init__(self, key: str, **params) -> None:
        self.key, self.params = key, params
        super().__init__(t(key, "en", **params))

    def message(self, lang: str = "en") -> str:
        return t(self.key, lang, **self.params)


def error_message(exc: BaseException, lang: str = "en") -> str:
    """A readable one-paragraph message for any failure (no traceback, no server paths)."""
    lang = language_code(lang)
    if isinstance(exc, UploadError):
        return exc.message(lang)
    if isinstance(exc, MediaError):
        reason = _ZH_REASON.get(type(exc).__name__, exc.reason) if lang == "zh" else exc.reason
        detail = str(exc.detail or "").replace(str(exc.path), exc.path.name)
        detail = f" ({detail})" if detail and lang == "en" else (f"（{detail}）" if detail else "")
        return t("bad_file", lang, reason=reason, detail=detail)
    return t("failed", lang, kind=type(exc).__name__)


# ------------------------------------------------------------------------------------------------ the app


@dataclass
class AnalyzeResult:
    """What one upload produced, ready for the UI."""

    messages: list[dict]  # assistant chat messages (markdown)
    state: dict | None = None  # {"explanation", "transcript", "evidence"} for follow-ups; None on failure
    probs: dict[str, float] | None = None  # for gr.Label: "CODE · en · zh" -> p
    chart: str | None = None  # explanation PNG path
    error: str | None = None
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)


def prob_bars(probs: dict[str, float], label: str, width: int = 20) -> str:
    """Text bars of the five probabilities (a fenced block, readable in any chat client)."""
    lines = []
    for lab in LABELS:
        p = float(probs.get(lab, 0.0))
        bar = "█" * int(round(p * width))
        mark = " ◀" if lab == label else ""
        lines.append(f"{lab} {bar:<{width}} {p:.2f}{mark}")
    return "```\n" + "\n".join(lines) + "\n```"


def label_key(code: str) -> str:
    """The bilingual class name used as gr.Label key."""
    return f"{code} · {LABEL_NAMES['en'][code]} · {LABEL_NAMES['zh'][code]}"


class DemoApp:
    """The demo's behaviour without Gradio: validate an upload, analyse it, answer follow-ups."""

    def __init__(self, pipeline, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
                 max_duration_s: float = DEFAULT_MAX_DURATION_S, answerer=None, work_dir: Path | None = None,
                 blur_faces: bool = True) -> None:
        self.pipeline = pipeline
        self.max_upload_mb = float(max_upload_mb)
        self.max_duration_s = float(max_duration_s)
        scorer = getattr(pipeline, "scorer", None)
        self.answerer = answerer or (make_answerer(scorer) if scorer is not None else EvidenceAnswerer())
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="omni-mer-demo-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.blur_faces = blur_faces
        # One model, many browser tabs: analyses and model answers run one at a time.
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------------- validation
    def validate(self, path: str | Path | None) -> Path:
        """Check an upload before decoding it: type, size and duration. Raises UploadError or MediaError."""
        if path is None or str(path) == "":
            raise UploadError("no_file")
        path = Path(path)
        if path.suffix.lower() not in MEDIA_EXTENSIONS:
            raise UploadError("bad_ext", name=path.name, exts=" ".join(VIDEO_EXTENSIONS))
        from omni_mer.media import probe

        if path.exists():
            size_mb = path.stat().st_size / 1e6
            if size_mb > self.max_upload_mb:
                raise UploadError("too_large", size=size_mb, limit=self.max_upload_mb)
        info = probe(path)  # raises MissingFileError / EmptyFileError / NotMediaError / ...
        if info.duration is not None and info.duration > self.max_duration_s:
            raise UploadError("too_long", dur=info.duration, limit=self.max_duration_s)
        return path

    # ----------------------------------------------------------------------------------------- analysis
    def _chart(self, analysis) -> str | None:
        from omni_mer.report.plots import render_explanation_png

        clip = analysis.clip
        explanation = dict(analysis.explanation)
        thumbs = None
        try:
            if len(clip.frames):
                from omni_mer.report.thumbnails import blurred_frames, picture_indices

                idx = picture_indices(clip)  # the frames explanation.png of the same clip shows
                thumbs = blurred_frames(clip, idx, blur=self.blur_faces)
                explanation["thumbnail_times"] = [float(clip.frame_times[i]) for i in idx]
        except Exception:  # thumbnails are decoration: the chart is still useful without them
            log.warning("thumbnails failed for %s; drawing the chart without them", clip.id, exc_info=True)
            thumbs = None
        out = self.work_dir / f"{uuid.uuid4().hex[:12]}_{clip.id}.png"
        return str(render_explanation_png(explanation, clip, out, thumbnails=thumbs))

    def analyze(self, path: str | Path | None, lang: str = "en") -> AnalyzeResult:
        """Validate and analyse one file; never raises (errors become a readable message)."""
        import time

        lang = language_code(lang)
        t0 = time.perf_counter()
        try:
            path = self.validate(path)
            with self._lock:
                analysis = self.pipeline.analyze(path, clip_id=_clip_id(path))
                chart = None
                try:
                    chart = self._chart(analysis)
                except Exception:
                    log.exception("explanation chart failed for %s", path.name)
        except (OmniMerError, ValueError) as exc:
            log.warning("upload refused: %s", exc)
            msg = error_message(exc, lang)
            return AnalyzeResult(messages=[{"role": "assistant", "content": "⚠ " + msg}], error=msg)
        except Exception as exc:  # anything else: a readable message in the chat, the traceback in the log
            log.exception("analysis failed for %s", path)
            msg = error_message(exc, lang)
            return AnalyzeResult(messages=[{"role": "assistant", "content": "⚠ " + msg}], error=msg)

        e = analysis.explanation
        seconds = time.perf_counter() - t0
        state = {"explanation": e, "transcript": analysis.evidence.transcript,
                 "evidence": analysis.evidence.to_dict()}
        return AnalyzeResult(
            messages=[{"role": "assistant", "content": self.summary(e, lang, seconds)}],
            state=state,
            probs={label_key(lab): float(e["probs"].get(lab, 0.0)) for lab in LABELS},
            chart=chart,
            seconds=seconds,
        )

    @staticmethod
    def summary(e: dict, lang: str, seconds: float = 0.0) -> str:
        """The first answer after an upload: label, probability bars, rationale."""
        lang = language_code(lang)
        label = e["label"]
        lines = [t("result", lang, code=label, en=LABEL_NAMES["en"][label], zh=LABEL_NAMES["zh"][label],
                   p=float(e["probs"].get(label, 0.0))), "",
                 prob_bars(e["probs"], label), "", f"**{t('why_head', lang)}**"]
        body = rationale_text(e.get("rationale", ""))
        lines += [f"- {line.strip()}" for line in body.splitlines() if line.strip()]
        lines += ["", t("follow", lang)]
        if seconds:
            lines.append(f"<sub>{t('took', lang, s=seconds, backend=e.get('backend', '?'))}</sub>")
        return "\n".join(lines)

    def ask(self, question: str, state: dict | None, lang: str = "en") -> str:
        """Answer a follow-up question about the last analysed clip; never raises."""
        ctx = ChatContext(state["explanation"], state.get("transcript", ""), state.get("evidence")) if state else None
        try:
            with self._lock:
                return self.answerer.answer(question, ctx, lang)
        except Exception as exc:
            log.exception("answer failed")
            return "⚠ " + error_message(exc, lang)


def _clip_id(path: Path) -> str:
    # Gradio stores uploads as <hash>/<original name>; the original stem is the readable id.
    return path.stem


# ------------------------------------------------------------------------------------------------ Gradio


def sample_paths(samples_dir: Path | None = None) -> list[str]:
    """The shipped sample videos (English first), as strings for gr.Examples."""
    d = Path(samples_dir or SAMPLES_DIR)
    if not d.is_dir():
        return []
    vids = [p for p in sorted(d.iterdir()) if p.suffix.lower() in VIDEO_EXTENSIONS]
    return [str(p) for p in sorted(vids, key=lambda p: (not p.name.startswith("en"), p.name))]


def sample_label(path: str) -> str:
    """Example label of a sample file: "en_happy_review.mp4" -> "English · happy review"."""
    stem = Path(path).stem
    lang, _, rest = stem.partition("_")
    if lang in ("en", "zh") and rest:
        return f"{'English' if lang == 'en' else '中文'} · {rest.replace('_', ' ')}"
    return stem


_CSS = """
#omni-header h2 {margin-bottom: 0.2em;}
#label-output {min-height: 0;}
#chatbot {font-size: 15px;}
#chatbot pre {font-size: 13px; line-height: 1.25;}
.suggest-btn {min-width: 0 !important;}
footer {display: none !important;}
"""


def theme():
    """A Gradio theme with system fonts only (nothing fetched from Google Fonts or a CDN)."""
    import gradio as gr

    return gr.themes.Soft(primary_hue="indigo", secondary_hue="slate", font=SYSTEM_FONTS, font_mono=MONO_FONTS)


def build_demo(pipeline, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
               max_duration_s: float = DEFAULT_MAX_DURATION_S, samples_dir: Path | None = None,
               app: DemoApp | None = None):
    """The Gradio Blocks of the demo (not launched). ``pipeline`` must already be built (and warmed up)."""
    import gradio as gr

    app = app or DemoApp(pipeline, max_upload_mb=max_upload_mb, max_duration_s=max_duration_s)
    lang0 = "en"

    with gr.Blocks(title="omni-mer demo", fill_width=True) as demo:
        demo.omni_app = app  # type: ignore[attr-defined]  # tests and _launch reach the app through the Blocks
        state = gr.State(None)
        with gr.Row(equal_height=False):
            header = gr.Markdown(t("title", lang0), elem_id="omni-header")
            lang = gr.Radio([("English", "en"), ("中文", "zh")], value=lang0, label=t("lang", lang0),
                            elem_id="lang-switch", scale=0, min_width=200)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                video = gr.Video(label=t("video", lang0), sources=["upload"], elem_id="upload-video", height=280)
                samples = sample_paths(samples_dir)
                examples = None
                if samples:
                    examples = gr.Examples(examples=[[s] for s in samples], inputs=[video],
                                           label=t("samples", lang0), examples_per_page=8,
                                           example_labels=[sample_label(s) for s in samples])
                probs = gr.Label(label=t("probs", lang0), num_top_classes=5, elem_id="label-output")
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(label=t("chat", lang0), elem_id="chatbot", height=720,
                                     buttons=["copy"], feedback_options=None, autoscroll=True)
                with gr.Row():
                    question = gr.Textbox(label=t("question", lang0), placeholder=t("placeholder", lang0),
                                          show_label=False, lines=1, scale=5, elem_id="question", container=False)
                    send = gr.Button(t("send", lang0), variant="primary", scale=1, min_width=80, elem_id="ask")
                    clear = gr.Button(t("clear", lang0), scale=1, min_width=80, elem_id="clear")
                suggest_md = gr.Markdown(f"**{t('suggest', lang0)}**")
                with gr.Row():
                    suggest = [gr.Button(t(k, lang0), size="sm", elem_classes=["suggest-btn"], elem_id=f"sugg-{k}")
                               for k in QUESTION_KEYS]
        chart_md = gr.Markdown(f"#### {t('chart', lang0)}", elem_id="chart-heading")
        chart = gr.Image(label=t("chart", lang0), type="filepath", elem_id="explanation-chart",
                         interactive=False, show_label=False, height=None)

        # -------------------------------------------------------------------------------- handlers
        def on_video(path, history, lang_):
            history = list(history or [])
            if not path:
                yield history, None, None, None, gr.skip()
                return
            name = Path(path).name
            history = history + [{"role": "user", "content": t("uploaded", lang_, name=name)},
                                 {"role": "assistant", "content": t("analysing", lang_, name=name)}]
            yield history, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            res = app.analyze(path, lang_)
            history = history[:-1] + res.messages
            yield history, res.state, res.probs, res.chart, gr.update(value=why_not_question(res.state, lang_))

        def on_ask(q, history, st, lang_):
            history = list(history or [])
            q = (q or "").strip()
            if not q:
                return history, ""
            reply = app.ask(q, st, lang_)
            return history + [{"role": "user", "content": q}, {"role": "assistant", "content": reply}], ""

        def on_lang(lang_, st):
            updates = [gr.update(value=t("title", lang_)), gr.update(label=t("video", lang_)),
                       gr.update(label=t("probs", lang_)), gr.update(label=t("chat", lang_)),
                       gr.update(placeholder=t("placeholder", lang_), label=t("question", lang_)),
                       gr.update(value=t("send", lang_)), gr.update(value=t("clear", lang_)),
                       gr.update(value=f"**{t('suggest', lang_)}**"), gr.update(label=t("chart", lang_)),
                       gr.update(value=f"#### {t('chart', lang_)}")]
            updates += [gr.update(value=why_not_question(st, lang_) if k == "q_why_not" else t(k, lang_))
                        for k in QUESTION_KEYS]
            if examples is not None:
                updates.append(gr.update(label=t("samples", lang_)))
            return updates

        video.change(on_video, [video, chatbot, lang], [chatbot, state, probs, chart, suggest[0]],
                     concurrency_id="model", concurrency_limit=1, show_progress="minimal")
        question.submit(on_ask, [question, chatbot, state, lang], [chatbot, question], concurrency_id="model")
        send.click(on_ask, [question, chatbot, state, lang], [chatbot, question], concurrency_id="model")
        for btn in suggest:
            btn.click(on_ask, [btn, chatbot, state, lang], [chatbot, question], concurrency_id="model")
        clear.click(lambda lang_: ([], None, None, None, None, gr.update(value=t("q_why_not", lang_))), [lang],
                    [chatbot, state, probs, chart, video, suggest[0]], queue=False)
        lang.change(on_lang, [lang, state], [header, video, probs, chatbot, question, send, clear, suggest_md, chart, chart_md]
                    + suggest + ([examples.dataset] if examples is not None else []), queue=False)
    return demo


# ------------------------------------------------------------------------------------------------ CLI


def _get_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="omni-mer demo", description="Gradio chat demo (bound to 127.0.0.1 by default)")
    p.add_argument("--backend", choices=("auto", "lite", "omni", "llm"), default="auto",
                   help="auto = omni when --model or $OMNI_MER_MODEL is set, else lite")
    p.add_argument("--model", default=None, help="Qwen2.5-Omni model folder (omni backend) or Qwen2 folder (llm)")
    p.add_argument("--adapter", default=None, help="LoRA adapter folder (omni or llm backend)")
    p.add_argument("--calibration", type=Path, default=None, help="lite fusion calibration JSON")
    p.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to serve on (default: %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help="largest accepted upload in MB (default: %(default)s)")
    p.add_argument("--max-duration-s", type=float, default=DEFAULT_MAX_DURATION_S,
                   help="longest accepted clip in seconds (default: %(default)s)")
    p.add_argument("--samples", type=Path, default=SAMPLES_DIR, help="folder of sample videos shown as examples")
    p.add_argument("--no-blur", action="store_true", help="do not blur faces in the chart thumbnails")
    args = p.parse_args(argv)
    if args.max_upload_mb <= 0 or args.max_duration_s <= 0:
        p.error("--max-upload-mb and --max-duration-s must be > 0")
    if not 0 < args.port < 65536:
        p.error(f"--port {args.port} is not a valid port (1-65535)")
    return args


def _load_pipeline(args: argparse.Namespace):
    """Build the pipeline and load every model once, before the server accepts requests."""
    import time

    from omni_mer.pipeline import Pipeline

    t0 = time.perf_counter()
    pipeline = Pipeline.build(args.backend, model=args.model, adapter=args.adapter, calibration=args.calibration)
    pipeline.warm_up()
    log.info("models loaded in %.1f s (backend %s)", time.perf_counter() - t0, pipeline.scorer.name)
    return pipeline


def _launch(demo, args: argparse.Namespace) -> None:
    app: DemoApp = demo.omni_app
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding to %s: the demo is reachable from other machines", args.host)
    allowed = [str(app.work_dir)] + ([str(args.samples)] if args.samples and Path(args.samples).is_dir() else [])
    demo.queue(default_concurrency_limit=1, max_size=32)
    demo.launch(server_name=args.host, server_port=args.port, share=False, inbrowser=False, show_error=False,
                max_file_size=f"{args.max_upload_mb:g}mb", allowed_paths=allowed, ssr_mode=False,
                theme=theme(), css=_CSS, footer_links=[], pwa=False, mcp_server=False)


def main(argv: list[str] | None = None) -> int:
    """`omni-mer demo [--backend auto|lite|omni|llm] [--model] [--adapter] [--host] [--port] ...`."""
    args = _get_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        pipeline = _load_pipeline(args)
    except OmniMerError as exc:
        log.error("omni-mer demo: %s", exc)
        return 2
    app = DemoApp(pipeline, max_upload_mb=args.max_upload_mb, max_duration_s=args.max_duration_s,
                  blur_faces=not args.no_blur)
    demo = build_demo(pipeline, samples_dir=args.samples, app=app)
    log.info("omni-mer demo: serving on http://%s:%s (backend %s)", args.host, args.port, pipeline.scorer.name)
    _launch(demo, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
