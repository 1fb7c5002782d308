"""Synthetic bank card renderer: a flat, front-facing card with known layout.

`render_card(rng)` returns a `SynthCard`: the card image at a fixed ID-1 size
(CARD_W x CARD_H, 85.60 x 53.98 mm) and the boxes of what the engine must find
(number line, expiry, issue date) with their texts. `engine.synth.scene` puts
it into a photo; the training scripts crop from it.

Fonts: OCR-A/OCR-B ship in engine/fonts (public domain, Debian fonts-ocr-a/b).
DejaVu and WenQuanYi (Chinese bank names) are used when installed; textures
come from Debian's gnome/mate backgrounds when installed, procedural otherwise.
"""
from __future__ import annotations

import functools
import glob
import os
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

CARD_W, CARD_H = 856, 540  # 10 px per mm, ID-1 aspect
FONT_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fonts")
NUMBER_FONTS = [
    os.path.join(FONT_DIR, "OCRA.ttf"),
    os.path.join(FONT_DIR, "OCRB.otf"),
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",  # flat black serif numbers (older CCB cards)
]
CJK_FONT = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
TEXTURE_GLOBS = ["/usr/share/backgrounds/**/*.jpg", "/usr/share/backgrounds/**/*.png", "/usr/share/backgrounds/**/*.webp"]
BANK_NAMES = [
    "中国工商银行", "中国建设银行", "中国银行", "中国农业银行", "交通银行", "招商银行", "浦发银行",
    "中信银行", "兴业银行", "广发银行", "民生银行", "光大银行", "华夏银行", "平安银行", "邮储银行",
    "北京银行", "上海银行", "宁波银行", "农村信用社", "江苏银行",
]
LAYOUTS = {  # group sizes of the printed number
    "4444": (4, 4, 4, 4),
    "44443": (4, 4, 4, 4, 3),
    "6-13": (6, 13),
    "465": (4, 6, 5),
    "19": (19,),
    "4447": (4, 4, 4, 7),
    "66": (6, 12),
}
# Labels real cards print by their dates (the varied date block, see render_card): one line or two
# stacked lines left of the date; often MONTH/YEAR above it as well.
EXPIRY_LABELS = (("VALID THRU",), ("GOOD THRU",), ("VALID", "THRU"), ("GOOD", "THRU"), ("EXPIRES",), ("有效期",), ("有效期限",), ("有效期限", "VALID THRU"))
ISSUE_LABELS = (("VALID FROM",), ("VALID", "FROM"), ("MEMBER", "SINCE"), ("发卡日",))
DATE_HEADS = ("MONTH/YEAR", "MONTH / YEAR", "月/年")
LAYOUT_WEIGHTS = {"4444": 0.42, "44443": 0.22, "6-13": 0.1, "465": 0.06, "19": 0.08, "4447": 0.06, "66": 0.06}


@dataclass
class TextBox:
    text: str  # "6217 0000 1003 0385 457", "12/26"
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 on the card


@dataclass
class SynthCard:
    image: np.ndarray  # BGR, CARD_H x CARD_W
    number: TextBox
    expiry: TextBox | None
    issue: TextBox | None
    embossed: bool
    extra_boxes: list[TextBox] = field(default_factory=list)
    # The label lines printed by each date ("expiry" / "issue" -> VALID THRU, or VALID and THRU
    # stacked), for training a reader of labels; the dates' own boxes stay their targets.
    labels: dict[str, list[TextBox]] = field(default_factory=dict)


@functools.lru_cache(maxsize=None)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=1)
def _textures() -> list[np.ndarray]:
    out = []
    for pattern in TEXTURE_GLOBS:
        for path in sorted(glob.glob(pattern, recursive=True)):
            img = cv2.imread(path)
            if img is not None:
                scale = 900 / max(img.shape[:2])
                out.append(cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    return out


def available_number_fonts() -> list[str]:
    return [f for f in NUMBER_FONTS if os.path.exists(f)]


def luhn_complete(body: str) -> str:
    """Append the Luhn check digit to `body`."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    return body + str((10 - total % 10) % 10)


def random_number(rng: np.random.Generator, length: int) -> str:
    prefixes = ["62", "621", "622", "623", "625", "628", "4", "5", "3", "60", "9"]
    prefix = prefixes[rng.integers(len(prefixes))] if rng.random() < 0.7 else ""
    body = prefix + "".join(str(d) for d in rng.integers(0, 10, length - 1 - len(prefix)))
    return luhn_complete(body) if rng.random() < 0.6 else body + str(rng.integers(10))


def group(number: str, sizes: tuple[int, ...]) -> str:
    parts, i = [], 0
    for s in sizes:
        parts.append(number[i : i + s])
        i += s
    if i < len(number):
        parts.append(number[i:])
    return " ".join(p for p in parts if p)


def _random_color(rng, lo=0, hi=255):
    return tuple(int(c) for c in rng.integers(lo, hi, 3))


def _background(rng: np.random.Generator) -> np.ndarray:
    h, w = CARD_H, CARD_W
    kind = rng.random()
    c1 = np.array(_random_color(rng), np.float32)
    c2 = np.array(_random_color(rng), np.float32)
    angle = rng.uniform(0, np.pi)
    xs = np.arange(w, dtype=np.float32)[None, :] * np.cos(angle)
    ys = np.arange(h, dtype=np.float32)[:, None] * np.sin(angle)
    t = xs + ys
    t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
    img = cv2.merge([(c1[i] + (c2[i] - c1[i]) * t).astype(np.float32) for i in range(3)])
    textures = _textures()
    if textures and kind < 0.6:
        tex = textures[rng.integers(len(textures))]
        th, tw = tex.shape[:2]
        scale = rng.uniform(1.0, 2.5) * max(h / th, w / tw)
        tex = cv2.resize(tex, None, fx=scale, fy=scale)
        y0 = rng.integers(0, tex.shape[0] - h + 1)
        x0 = rng.integers(0, tex.shape[1] - w + 1)
        crop = tex[y0 : y0 + h, x0 : x0 + w].astype(np.float32)
        alpha = rng.uniform(0.3, 1.0)
        img = img * (1 - alpha) + crop * alpha
    elif kind < 0.8:  # swooshes and blobs, like card artwork
        for _ in range(rng.integers(2, 7)):
            overlay = img.copy()
            color = _random_color(rng)
            if rng.random() < 0.5:
                center = (int(rng.integers(-200, w + 200)), int(rng.integers(-200, h + 200)))
                axes = (int(rng.integers(80, 600)), int(rng.integers(40, 400)))
                cv2.ellipse(overlay, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
            else:
                pts = rng.integers(-100, max(w, h) + 100, (int(rng.integers(3, 6)), 2)).astype(np.int32)
                cv2.fillPoly(overlay, [pts], color)
            a = rng.uniform(0.15, 0.6)
            img = img * (1 - a) + overlay * a
    if rng.random() < 0.3:  # fine guilloche lines
        for _ in range(rng.integers(5, 30)):
            p = rng.integers(0, max(w, h), 4)
            cv2.line(img, (int(p[0]), 0), (int(p[1]), h), _random_color(rng), 1, cv2.LINE_AA)
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_chip(img, rng):
    x = int(rng.uniform(0.07, 0.13) * CARD_W)
    y = int(rng.uniform(0.30, 0.40) * CARD_H)
    w, h = int(0.14 * CARD_W), int(0.17 * CARD_H)
    gold = (int(rng.integers(60, 130)), int(rng.integers(150, 200)), int(rng.integers(190, 235)))
    if rng.random() < 0.3:
        gold = (190, 190, 190)
    cv2.rectangle(img, (x, y), (x + w, y + h), gold, -1)
    dark = tuple(max(0, c - 70) for c in gold)
    cv2.rectangle(img, (x, y), (x + w, y + h), dark, 2)
    cv2.line(img, (x + w // 3, y), (x + w // 3, y + h), dark, 2)
    cv2.line(img, (x + 2 * w // 3, y), (x + 2 * w // 3, y + h), dark, 2)
    cv2.line(img, (x, y + h // 2), (x + w, y + h // 2), dark, 2)


def _draw_logo(img, rng):
    """A network-logo-like patch at the bottom right (UnionPay's three slanted bars, VISA text...)."""
    w, h = int(rng.uniform(0.16, 0.24) * CARD_W), int(rng.uniform(0.14, 0.2) * CARD_H)
    x = CARD_W - w - int(rng.uniform(0.03, 0.06) * CARD_W)
    y = CARD_H - h - int(rng.uniform(0.04, 0.08) * CARD_H)
    if rng.random() < 0.65:
        cols = [(40, 30, 220), (140, 60, 20), (100, 140, 10)]
        bw = w // 3
        for i, c in enumerate(cols):
            pts = np.array([[x + i * bw + 12, y], [x + (i + 1) * bw + 12, y], [x + (i + 1) * bw - 4, y + h], [x + i * bw - 4, y + h]], np.int32)
            cv2.fillPoly(img, [pts], c)
        cv2.putText(img, "UnionPay", (x + 6, y + h // 2), cv2.FONT_HERSHEY_DUPLEX, w / 190, (255, 255, 255), 2, cv2.LINE_AA)
    else:
        text = ["VISA", "mastercard", "JCB", "AMEX"][rng.integers(4)]
        cv2.putText(img, text, (x, y + h - 8), cv2.FONT_HERSHEY_TRIPLEX, w / (36 * len(text)), _random_color(rng), 3, cv2.LINE_AA)


def _text_layer(size, draw_fn) -> np.ndarray:
    layer = Image.new("L", size, 0)
    draw_fn(ImageDraw.Draw(layer))
    return np.asarray(layer, np.float32) / 255.0


def _mask_region(mask, pad=6):
    ys, xs = np.nonzero(mask > 0.01)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    return slice(max(0, ys.min() - pad), min(h, ys.max() + pad + 1)), slice(max(0, xs.min() - pad), min(w, xs.max() + pad + 1))


def _apply_flat(img, mask, color):
    """Paint `color` through `mask`, touching only the mask's bounding box (speed)."""
    region = _mask_region(mask)
    if region is None:
        return img
    m = mask[region][..., None]
    img[region] = img[region] * (1 - m) + np.array(color, np.float32)[None, None] * m
    return img


def _apply_embossed(img, mask, rng):
    """Raised digits: relief shading from the glyph mask, optionally with silver/gold tipping."""
    region = _mask_region(mask, pad=12)
    if region is None:
        return img
    img[region] = _emboss_region(img[region], mask[region], rng)
    return img


def _emboss_region(img, mask, rng):
    blurred = cv2.GaussianBlur(mask, (0, 0), rng.uniform(0.8, 2.0))
    gy, gx = np.gradient(blurred)
    light = rng.uniform(0, 2 * np.pi)
    relief = -(gx * np.cos(light) + gy * np.sin(light))
    relief = relief / (np.abs(relief).max() + 1e-6)
    strength = rng.uniform(50, 140)
    out = img + relief[..., None] * strength
    tip = rng.random()
    if tip < 0.45:  # silver or gold foil on the top of the digits
        base = (200, 200, 200) if rng.random() < 0.6 else (90, 180, 220)
        jitter = rng.integers(-40, 40)
        color = np.clip(np.array(base, np.float32) + jitter, 0, 255)
        core = cv2.erode(mask, np.ones((2, 2), np.uint8)) * rng.uniform(0.6, 1.0)
        out = _apply_flat(out, core, color)
    elif tip < 0.6:  # dark tipping
        out = _apply_flat(out, mask * rng.uniform(0.5, 0.95), _random_color(rng, 0, 80))
    # else: untipped, the digits show only by their relief
    return out


def _date_labels(size, rng: np.random.Generator, kind: str, box) -> tuple[np.ndarray, list[TextBox]]:
    """The label left of a date (one line or two stacked) and, often, a MONTH/YEAR head above it:
    a mask to print with the date, and the label's lines."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    choices = EXPIRY_LABELS if kind == "expiry" else ISSUE_LABELS
    lines = choices[rng.integers(len(choices))]
    if any(not ln.isascii() for ln in lines) and not os.path.exists(CJK_FONT):
        lines = ("VALID THRU",) if kind == "expiry" else ("VALID FROM",)
    line_h = h * rng.uniform(0.3, 0.5) if len(lines) > 1 else h * rng.uniform(0.3, 0.6)
    fonts = [_font(LATIN_FONT if ln.isascii() else CJK_FONT, max(9, int(line_h))) for ln in lines]
    gap = int(rng.uniform(0.2, 0.8) * h)
    head = DATE_HEADS[rng.integers(len(DATE_HEADS))] if rng.random() < 0.4 else None
    if head and not head.isascii() and not os.path.exists(CJK_FONT):
        head = None
    head_font = _font(LATIN_FONT if head is None or head.isascii() else CJK_FONT, max(9, int(h * rng.uniform(0.25, 0.4))))

    top = y0 + (h - line_h * len(lines)) / 2
    origins = [(x0 - gap - f.getlength(ln), top + k * line_h) for k, (ln, f) in enumerate(zip(lines, fonts))]

    def draw(d):
        for ln, f, xy in zip(lines, fonts, origins):
            d.text(xy, ln, font=f, fill=255)
        if head:
            d.text(((x0 + x1 - head_font.getlength(head)) / 2, y0 - head_font.size * 1.3), head, font=head_font, fill=255)

    return _text_layer(size, draw), [_text_box(ln, f, xy) for ln, f, xy in zip(lines, fonts, origins)]


def _text_box(text: str, font: ImageFont.FreeTypeFont, origin) -> TextBox:
    """Where PIL draws `text` at `origin` with `font`: its ink's bounding box."""
    left, top, right, bottom = font.getbbox(text)
    return TextBox(text, (int(origin[0] + left), int(origin[1] + top), int(np.ceil(origin[0] + right)), int(np.ceil(origin[1] + bottom))))


def render_card(rng: np.random.Generator, number: str | None = None, layout: str | None = None, embossed: bool | None = None, varied_dates: bool = False) -> SynthCard:
    """A random card; `number`, `layout` (a LAYOUTS key) and `embossed` pin those choices.

    `varied_dates` draws the date block the way real cards print it, not only as a one-line label
    and a date in the number's font: smaller dates, stacked and Chinese labels, MONTH/YEAR above,
    dates flat under an embossed number. It draws more random numbers, so it is off by default:
    the benchmark's and the tests' synthetic cards stay the same."""
    img = _background(rng).astype(np.float32)
    embossed = rng.random() < 0.55 if embossed is None else embossed
    size = (CARD_W, CARD_H)

    # Bank name, chip, logo: the clutter the locator must learn to ignore.
    if os.path.exists(CJK_FONT) and rng.random() < 0.85:
        name = BANK_NAMES[rng.integers(len(BANK_NAMES))]
        fsize = int(rng.integers(34, 56))
        col = _random_color(rng)
        mask = _text_layer(size, lambda d: d.text((int(rng.integers(20, 200)), int(rng.integers(15, 60))), name, font=_font(CJK_FONT, fsize), fill=255))
        img = _apply_flat(img, mask, col)
    img_u8 = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.8:
        _draw_chip(img_u8, rng)
    if rng.random() < 0.85:
        _draw_logo(img_u8, rng)
    img = img_u8.astype(np.float32)

    # Number line.
    fonts = available_number_fonts()
    font_path = fonts[rng.integers(len(fonts))]
    if layout is None:
        layout = rng.choice(list(LAYOUT_WEIGHTS), p=list(LAYOUT_WEIGHTS.values()))
    sizes = LAYOUTS[layout]
    number = number or random_number(rng, sum(sizes))
    printed = group(number, sizes)
    if rng.random() < 0.3:  # double spaces between groups happen on real cards
        printed_draw = printed.replace(" ", "  ")
    else:
        printed_draw = printed
    target_w = rng.uniform(0.62, 0.9) * CARD_W
    fsize = 40
    font = _font(font_path, fsize)
    tw = font.getlength(printed_draw)
    fsize = int(np.clip(fsize * target_w / tw, 26, 76))
    font = _font(font_path, fsize)
    x0 = int(rng.uniform(0.04, 0.12) * CARD_W)
    y0 = int(rng.uniform(0.50, 0.62) * CARD_H)
    bbox = font.getbbox(printed_draw)
    if x0 + bbox[2] > CARD_W - 10:
        x0 = max(5, CARD_W - 10 - bbox[2])
    mask = _text_layer(size, lambda d: d.text((x0, y0), printed_draw, font=font, fill=255))
    ys, xs = np.nonzero(mask > 0.3)
    number_box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    if embossed:
        img = _apply_embossed(img, mask, rng)
    else:
        dark = img[number_box[1] : number_box[3], number_box[0] : number_box[2]].mean() > 110
        color = _random_color(rng, 0, 90) if dark else _random_color(rng, 170, 255)
        img = _apply_flat(img, mask, color)

    # Small print right under the number that real cards carry and crops catch: the first
    # four digits again in tiny type (UnionPay cards), or a MONTH/YEAR label.
    small_font = _font(LATIN_FONT, max(10, int(fsize * rng.uniform(0.25, 0.4))))
    if rng.random() < 0.5:
        tiny = number[:4] if rng.random() < 0.8 else "MONTH/YEAR"
        ty = number_box[3] + int(rng.uniform(0.0, 0.3) * (number_box[3] - number_box[1]))
        tx = number_box[0] + int(rng.uniform(-5, 30))
        m = _text_layer(size, lambda d: d.text((tx, ty), tiny, font=small_font, fill=255))
        img = _apply_flat(img, m, _random_color(rng, 0, 90) if img.mean() > 110 else _random_color(rng, 170, 255))

    # Dates under the number.
    expiry = issue = None
    date_scale = rng.uniform(0.55, 0.8)
    if varied_dates:
        date_scale = rng.uniform(0.4, 0.8)
        if rng.random() < 0.3:  # another font for the dates (and the name line below)
            font_path = fonts[rng.integers(len(fonts))]
    date_font = _font(font_path, int(fsize * date_scale))
    ydate = number_box[3] + int(rng.uniform(0.03, 0.08) * CARD_H)
    xcursor = int(rng.uniform(0.12, 0.45) * CARD_W)
    if varied_dates:
        ydate += int(rng.uniform(0.0, 0.05) * CARD_H)  # room for a MONTH/YEAR head
        xcursor = int(rng.uniform(0.12, 0.55) * CARD_W)
        dates_embossed = embossed and rng.random() < 0.75
    else:
        dates_embossed = embossed
    date_boxes = []
    if rng.random() < 0.3:
        mm, yy = int(rng.integers(1, 13)), int(rng.integers(0, 30))
        issue = f"{mm:02d}/{yy:02d}"
        date_boxes.append(("issue", issue, xcursor))
        xcursor += int(date_font.getlength(issue) + rng.uniform(60, 140))
    if rng.random() < 0.75:
        mm, yy = int(rng.integers(1, 13)), int(rng.integers(10, 40))
        expiry = f"{mm:02d}/{yy:02d}"
        date_boxes.append(("expiry", expiry, xcursor))
    label_font = _font(LATIN_FONT, max(10, int(date_font.size * 0.35)))
    boxes, labels = {}, {}
    for kind, text, x in date_boxes:
        if x + date_font.getlength(text) > CARD_W - 20:
            x = int(CARD_W - 20 - date_font.getlength(text))
        m = _text_layer(size, lambda d: d.text((x, ydate), text, font=date_font, fill=255))
        ys, xs = np.nonzero(m > 0.3)
        if len(xs) == 0:
            continue
        boxes[kind] = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        if varied_dates:
            label_mask, labels[kind] = _date_labels(size, rng, kind, boxes[kind])
            m = np.maximum(m, label_mask)
        else:
            label = ("VALID THRU" if kind == "expiry" else "VALID FROM") if rng.random() < 0.6 else ("有效期" if kind == "expiry" else "发卡日")
            lf = label_font if label.isascii() or not os.path.exists(CJK_FONT) else _font(CJK_FONT, label_font.size + 4)
            if label.isascii() or os.path.exists(CJK_FONT):
                origin = (x - int(lf.getlength(label)) - 8, ydate + 4)
                m = np.maximum(m, _text_layer(size, lambda d: d.text(origin, label, font=lf, fill=255)))
                labels[kind] = [_text_box(label, lf, origin)]
        if dates_embossed:
            img = _apply_embossed(img, m, rng)
        else:
            img = _apply_flat(img, m, _random_color(rng, 0, 90) if img.mean() > 110 else _random_color(rng, 170, 255))
    # Cardholder name line: latin capitals that must not be read as a date or number.
    if rng.random() < 0.7:
        name = "".join(chr(int(c)) for c in rng.integers(65, 91, int(rng.integers(6, 14))))
        name = name[:4] + " " + name[4:]
        yname = (max(b[3] for b in boxes.values()) if boxes else number_box[3]) + int(0.04 * CARD_H)
        if yname < CARD_H - 40:
            m = _text_layer(size, lambda d: d.text((int(0.08 * CARD_W), yname), name, font=_font(font_path, int(fsize * 0.55)), fill=255))
            img = _apply_embossed(img, m, rng) if embossed else _apply_flat(img, m, (30, 30, 30) if img.mean() > 110 else (235, 235, 235))

    card = np.clip(img, 0, 255).astype(np.uint8)
    return SynthCard(
        image=card,
        number=TextBox(printed, number_box),
        expiry=TextBox(expiry, boxes["expiry"]) if "expiry" in boxes else None,
        issue=TextBox(issue, boxes["issue"]) if "issue" in boxes else None,
        embossed=embossed,
        labels=labels,
    )
