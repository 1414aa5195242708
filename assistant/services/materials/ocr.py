"""Offline Chinese OCR of an inspected upload (rapidocr-onnxruntime: PP-OCRv4 detection and
recognition plus a direction classifier, Apache-2.0, models inside the wheel; nothing is downloaded).

- One engine per process, created on first use (about 0.6 s) under a lock.
- Calls are serialised (a second lock): on a 2-core machine two parallel recognitions are slower
  than two in a row, and onnxruntime already uses both cores for one.
- Input is bounded: photos are turned upright (EXIF orientation) and scaled down so that the longer
  side is at most ``MAX_SIDE`` pixels before recognition; PDF pages are rendered at a scale bounded
  the same way.
- PDFs: the text layer (pypdf) of the first pages is used when it has enough text; otherwise the
  first pages are rendered with PDFium (pypdfium2) and recognised.
- ``ocr_upload`` is async and runs the work in a thread; ``ocr_upload_sync`` is the same for
  synchronous callers (bench, tests).

The text returned here is raw (it can hold ID numbers): callers mask it (``mask_pii``) before it is
stored or logged. Logs from this module carry sizes and timings only.
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

from PIL import Image, ImageOps

from assistant.services.materials.inspect import KIND_PDF, Inspected

logger = logging.getLogger(__name__)

MAX_SIDE = 1600  # longer side (pixels) of what the recogniser sees
MIN_SIDE = 32  # smaller than this cannot hold text
MIN_LINES_FOR_TURN = 3  # text boxes needed before the page orientation is judged
FLIP_SCORE = 0.9  # direction-classifier confidence that counts a box as upside down
DET_BOX_THRESH = 0.4  # text-box confidence kept by the detector (rapidocr: 0.5; lower finds faint lines in dim photos)
FLAT_RANGE = 128  # grey levels (1st to 99th percentile) below which a photo counts as flat
PDF_OCR_PAGES = 2  # pages recognised from a scanned PDF
PDF_TEXT_PAGES = 3  # pages whose text layer is read
PDF_MIN_TEXT_CHARS = 20  # a text layer shorter than this is treated as absent (scans)
MAX_TEXT_CHARS = 4000  # text kept from one upload (the rules and the NLU need far less)
TEXT_LAYER_SCORE = 1.0  # confidence given to text taken from a PDF's text layer

_engine = None
_engine_lock = threading.Lock()
_run_lock = threading.Lock()


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float  # recogniser confidence 0..1
    box: Tuple[Tuple[float, float], ...] = ()  # four corners, pixels of the page given to the engine


@dataclass
class OcrResult:
    lines: List[OcrLine] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # process CPU time (all threads) spent reading: load-independent cost
    source: str = "ocr"  # "ocr" | "pdf_text" | "none"
    pages: int = 0  # pages (or images) looked at

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)

    @property
    def chars(self) -> int:
        return sum(len(line.text.strip()) for line in self.lines)

    @property
    def mean_score(self) -> float:
        """Mean confidence weighted by characters (0 when nothing was read)."""
        total = self.chars
        if not total:
            return 0.0
        return sum(line.score * len(line.text.strip()) for line in self.lines) / total


class _DirectionSpy:
    """Wraps the engine's direction classifier to keep its last answers (0 / 180 per text box)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.last: List[Tuple[str, float]] = []

    def __call__(self, images):
        crops, labels, elapsed = self.inner(images)
        self.last = [(str(label), float(score)) for label, score in labels]
        return crops, labels, elapsed


def engine():
    """The process-wide RapidOCR engine (created on first call)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                started = time.perf_counter()
                from rapidocr_onnxruntime import RapidOCR

                created = RapidOCR(max_side_len=MAX_SIDE, det_box_thresh=DET_BOX_THRESH)
                created.text_cls = _DirectionSpy(created.text_cls)
                _engine = created
                logger.info("materials.ocr.engine_loaded seconds=%.2f", time.perf_counter() - started)
    return _engine


def _stretch_if_flat(image: Image.Image) -> Image.Image:
    """Dark or washed-out photos (the middle 98 % of grey levels spans less than ``FLAT_RANGE``)
    get their levels stretched; well-exposed photos are left as they are."""
    histogram = image.convert("L").histogram()
    total = sum(histogram)
    low_count, high_count = total * 0.01, total * 0.99
    seen, low, high = 0, 0, 255
    for level, count in enumerate(histogram):
        seen += count
        if seen <= low_count:
            low = level
        if seen >= high_count:
            high = level
            break
    if high - low >= FLAT_RANGE:
        return image
    return ImageOps.autocontrast(image, cutoff=1)


def prepare_image(image: Image.Image, max_side: Optional[int] = None) -> Image.Image:
    """Upright (EXIF), RGB, longer side at most ``max_side`` (default ``MAX_SIDE``), levels
    stretched when flat (low light)."""
    max_side = max_side or MAX_SIDE
    image = ImageOps.exif_transpose(image)
    if image.mode != "RGB":
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGB", image.size, (255, 255, 255))
            background.paste(rgba, mask=rgba.split()[-1])
            image = background
        else:
            image = image.convert("RGB")
    longer = max(image.size)
    if longer > max_side:
        scale = max_side / longer
        image = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS
        )
    return _stretch_if_flat(image)


def _run(image: Image.Image) -> Tuple[List[OcrLine], List[Tuple[str, float]]]:
    import numpy as np

    bgr = np.ascontiguousarray(np.asarray(image)[:, :, ::-1])
    with _run_lock:
        ocr = engine()
        ocr.text_cls.last = []  # no boxes found: the classifier does not run
        result, _elapsed = ocr(bgr)
        directions = list(ocr.text_cls.last)
    lines = []
    for box, text, score in result or []:
        text = (text or "").strip()
        if text:
            lines.append(OcrLine(text=text, score=float(score), box=tuple((float(x), float(y)) for x, y in box)))
    return lines, directions


def page_turn(lines: Sequence[OcrLine], directions: Sequence[Tuple[str, float]]) -> Optional[int]:
    """The PIL transpose that makes a page upright, or None when it already is.

    Sideways pages give mostly tall boxes (the engine turns those crops a quarter counter-clockwise
    before the direction classifier): if the classifier then mostly says "180", the page needs a
    quarter turn clockwise, else counter-clockwise. Upright-box pages whose boxes the classifier
    mostly flips are upside down.
    """
    texts = [line for line in lines if len(line.text) >= 2 and line.box]
    if len(texts) < MIN_LINES_FOR_TURN:
        return None
    tall = 0
    for line in texts:
        (x0, y0), (x1, y1), _, (x3, y3) = line.box
        width, height = math.hypot(x1 - x0, y1 - y0), math.hypot(x3 - x0, y3 - y0)
        tall += height > 1.5 * width
    flipped = sum(1 for label, score in directions if label == "180" and score >= FLIP_SCORE)
    flipped_share = flipped / max(1, len(directions))
    if tall / len(texts) >= 0.5:
        return Image.ROTATE_270 if flipped_share > 0.5 else Image.ROTATE_90
    if flipped_share > 0.6:
        return Image.ROTATE_180
    return None


def recognise(image: Image.Image) -> List[OcrLine]:
    """Recognise the text of a prepared RGB image (blocking); a sideways or upside-down page is
    turned upright and read again."""
    if min(image.size) < MIN_SIDE:
        return []
    lines, directions = _run(image)
    turn = page_turn(lines, directions)
    if turn is not None:
        logger.info("materials.ocr.page_turned transpose=%d", turn)
        lines, _directions = _run(image.transpose(turn))
    return _reading_order(lines)


def _reading_order(lines: Sequence[OcrLine]) -> List[OcrLine]:
    """Top to bottom, then left to right within a row (boxes whose centres are close vertically)."""
    if not lines:
        return []

    def centre(line: OcrLine) -> Tuple[float, float, float]:
        if not line.box:
            return 0.0, 0.0, 0.0
        ys = [y for _, y in line.box]
        xs = [x for x, _ in line.box]
        return sum(xs) / len(xs), sum(ys) / len(ys), max(ys) - min(ys)

    items = sorted(((centre(line), line) for line in lines), key=lambda item: item[0][1])
    rows: List[List[Tuple[Tuple[float, float, float], OcrLine]]] = []
    for item in items:
        (_x, y, h) = item[0]
        if rows:
            last = rows[-1]
            last_y = sum(c[1] for c, _ in last) / len(last)
            last_h = max(c[2] for c, _ in last)
            if abs(y - last_y) < 0.5 * max(h, last_h, 1.0):
                last.append(item)
                continue
        rows.append([item])
    ordered: List[OcrLine] = []
    for row in rows:
        ordered.extend(line for _, line in sorted(row, key=lambda item: item[0][0]))
    return ordered


def _image_lines(data: bytes) -> Tuple[List[OcrLine], int]:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at a reduced scale when large
        prepared = prepare_image(image)
    return recognise(prepared), 1


def _pdf_text_layer(data: bytes) -> List[OcrLine]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    lines: List[OcrLine] = []
    for page in list(reader.pages)[:PDF_TEXT_PAGES]:
        try:
            text = page.extract_text() or ""
        except Exception as exc:  # a damaged content stream: fall back to rendering
            logger.info("materials.ocr.pdf_text_failed error=%s", type(exc).__name__)
            return []
        lines.extend(OcrLine(text=t.strip(), score=TEXT_LAYER_SCORE) for t in text.splitlines() if t.strip())
    return lines


def _pdf_rendered_lines(data: bytes) -> Tuple[List[OcrLine], int]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        lines: List[OcrLine] = []
        count = min(len(pdf), PDF_OCR_PAGES)
        for index in range(count):
            page = pdf[index]
            try:
                width, height = page.get_size()  # points (1/72 inch)
                scale = min(200 / 72, MAX_SIDE / max(width, height, 1.0))  # <= 200 dpi, bounded side
                bitmap = page.render(scale=scale)
                image = bitmap.to_pil()
            finally:
                page.close()
            lines.extend(recognise(prepare_image(image)))
        return lines, count
    finally:
        pdf.close()


def _bounded(lines: List[OcrLine], limit: int) -> List[OcrLine]:
    kept, total = [], 0
    for line in lines:
        if total + len(line.text) > limit:
            break
        kept.append(line)
        total += len(line.text)
    return kept


def ocr_upload_sync(data: bytes, inspected: Inspected) -> OcrResult:
    """Read the text of an inspected upload (blocking). Never raises for a bad file: empty result."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = OcrResult()
    try:
        if inspected.kind == KIND_PDF:
            lines = _pdf_text_layer(data)
            if sum(len(line.text) for line in lines) >= PDF_MIN_TEXT_CHARS:
                result.lines, result.source, result.pages = lines, "pdf_text", min(inspected.pages or 1, PDF_TEXT_PAGES)
            else:
                result.lines, result.pages = _pdf_rendered_lines(data)
        else:
            result.lines, result.pages = _image_lines(data)
    except Exception as exc:  # the file passed inspection; a failure here means "could not read"
        logger.warning("materials.ocr.failed kind=%s error=%s", inspected.kind, type(exc).__name__)
        result = OcrResult(source="none")
    result.lines = _bounded(result.lines, MAX_TEXT_CHARS)
    result.seconds = time.perf_counter() - started
    result.cpu_seconds = time.process_time() - cpu_started
    logger.info(
        "materials.ocr.done kind=%s source=%s pages=%d lines=%d chars=%d score=%.2f seconds=%.2f",
        inspected.kind, result.source, result.pages, len(result.lines), result.chars, result.mean_score, result.seconds,
    )
    return result


async def ocr_upload(data: bytes, inspected: Inspected) -> OcrResult:
    """:func:`ocr_upload_sync` in a worker thread."""
    return await asyncio.to_thread(ocr_upload_sync, data, inspected)
