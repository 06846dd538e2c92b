"""The OCR test set: text lines and pages rendered with real fonts, with their ground truth.

Everything is generated from a seed (the same seed gives the same images, bit for bit, with the
same Pillow and fonts), so the set lives in this file and not in the repository as images.

    render_line(text, font, size)   one tight text line, as a detector crop looks (BGR uint8)
    line_set(seed)                  [(group, image, text)]: lines of every length, English and Chinese
    page_set(seed)                  [(group, image, [(text, quad)])]: clean, photographed, big and
                                    rotated pages; each quad is 4x2 float image pixels (tl, tr, br, bl
                                    of the upright text) and follows every transform of its page
    cer(ref, hyp)                   character error rate, spaces ignored
    space_errors(ref, hyp)          word gaps missed or invented (what cer ignores)
    quad_iou(a, b)                  intersection over union of two convex quads (quad_areas: the areas)
    normal(text), edit_distance(a, b) what cer compares, and how

Fonts come from Debian packages (fonts-dejavu-core, fonts-liberation, fonts-wqy-microhei,
fonts-wqy-zenhei); a missing one is skipped with a message on stderr. The sentences below are the
project's own text.
"""
import os
import random
import sys
import unicodedata

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_ROOT = "/usr/share/fonts/truetype"
# name: (file under FONT_ROOT, Debian package). The CJK fonts have Latin letters too.
LATIN_FONTS = {
    "DejaVuSans": ("dejavu/DejaVuSans.ttf", "fonts-dejavu-core"),
    "DejaVuSerif": ("dejavu/DejaVuSerif.ttf", "fonts-dejavu-core"),
    "DejaVuSansMono": ("dejavu/DejaVuSansMono.ttf", "fonts-dejavu-core"),
    "LiberationSans": ("liberation/LiberationSans-Regular.ttf", "fonts-liberation"),
    "LiberationSerif": ("liberation/LiberationSerif-Regular.ttf", "fonts-liberation"),
}
CJK_FONTS = {
    "WenQuanYiMicroHei": ("wqy/wqy-microhei.ttc", "fonts-wqy-microhei"),
    "WenQuanYiZenHei": ("wqy/wqy-zenhei.ttc", "fonts-wqy-zenhei"),
}
ALL_FONTS = dict(LATIN_FONTS, **CJK_FONTS)

ENGLISH = (
    "The morning train left the station a few minutes late because of the heavy fog over the river. "
    "Every box in the warehouse carries a label with its weight, its owner and the date it arrived. "
    "Please read the safety notes before you switch on the machine for the first time. "
    "Our small garden grows tomatoes, beans and a little mint beside the kitchen door. "
    "The library opens at nine on weekdays and closes early on the first Sunday of each month. "
    "She wrote the answer on the board and asked the class to check it with a calculator. "
    "A light rain fell all afternoon, so the children built a castle of cushions in the hall. "
    "The report explains how the new pump saves water without making the fields any drier. "
    "If the printer stops, open the front cover, remove the paper and close it again firmly. "
    "Old maps of the harbour show a lighthouse that was pulled down long before the war. "
    "Two engineers measured the bridge twice and found that it had moved less than a finger. "
    "He keeps his bicycle in the shed and rides it to the market every Saturday morning. "
    "The museum asks visitors not to touch the paintings and to leave large bags at the desk. "
    "Fresh bread is baked before dawn and sold out by the time most people wake up. "
    "This chapter describes the history of the town, its trade and the people who built it. "
    "When the wind turns to the north, the fishing boats stay in the harbour until it calms. "
    "The teacher reminded everyone that the exam would start at half past eight sharp. "
    "Our neighbours painted their fence green and planted a row of sunflowers along it. "
    "Keep this receipt, because you will need it if you want to return or exchange the item. "
    "The old clock in the square has not shown the right time for nearly twenty years. "
    "Students should hand in their projects by Friday and present them the following week. "
    "A careful driver checks the tyres, the lights and the oil before every long journey. "
    "The hotel kitchen serves breakfast from seven until ten and dinner after six. "
    "Most of the letters in the box were written by hand and tied together with string. "
    "Researchers counted the birds on the island each spring and wrote down every species."
)

CHINESE = (
    "今天早上的火车因为大雾晚了几分钟才出发。",
    "仓库里的每个箱子都贴着标签，写明重量和到货日期。",
    "第一次打开机器之前，请先仔细阅读安全说明。",
    "我们的小花园里种着西红柿、豆角和一些薄荷。",
    "图书馆工作日九点开门，每月第一个星期天提前关门。",
    "老师把答案写在黑板上，让同学们用计算器检查一遍。",
    "下午一直下着小雨，孩子们在客厅里用靠垫搭了一座城堡。",
    "这份报告说明了新水泵如何节约用水而不让田地变干。",
    "如果打印机停止工作，请打开前盖，取出纸张后再关好。",
    "港口的旧地图上画着一座很早以前就被拆除的灯塔。",
    "两位工程师把这座桥测量了两次，发现它几乎没有移动。",
    "他把自行车放在小屋里，每个星期六早上骑车去市场。",
    "博物馆请参观者不要触摸画作，并把大包寄存在服务台。",
    "新鲜的面包在天亮之前烤好，很多人起床时已经卖完了。",
    "这一章介绍了小城的历史、商业以及建设它的人们。",
    "北风刮起来的时候，渔船都停在港口里等待风平浪静。",
    "老师提醒大家考试将在八点半准时开始，请不要迟到。",
    "邻居把篱笆刷成了绿色，还在旁边种了一排向日葵。",
    "请保留这张收据，退货或者换货的时候需要出示它。",
    "广场上的老钟已经将近二十年没有显示正确的时间了。",
    "学生们应在星期五之前交上作业，并在下周进行展示。",
    "细心的司机在每次长途旅行之前都会检查轮胎和机油。",
    "酒店的厨房早上七点到十点供应早餐，晚上六点以后供应晚餐。",
    "盒子里的大多数信件都是手写的，用细绳捆在一起。",
    "研究人员每年春天都会统计岛上的鸟类并记录每一个物种。",
    "城市的公共交通越来越方便，很多人选择乘坐地铁上班。",
    "这条河从山里流出来，经过三个村庄以后注入大海。",
    "妈妈在厨房里做饭，爸爸在阳台上给花浇水。",
)

# Mixed lines: Chinese with English words, digits and punctuation, filled from MIXED_FIELDS.
MIXED = (
    "会议定于{date}下午{time}在{room}室举行",
    "订单号{order}的商品已经发货，运费{price}元",
    "请在{date}之前登录{site}完成注册",
    "本次考试共有{n}道题，满分100分，时间{m}分钟",
    "客服电话{phone}，工作时间{time}至18:00",
    "型号{model}的电池容量为{mah}mAh，重量{g}克",
    "第{n}章 Python编程入门与实践",
    "温度{temp}°C，湿度{pct}%，风力3级",
)


def _mixed_fields(rng):
    return {
        "date": "%d年%d月%d日" % (rng.randint(2015, 2030), rng.randint(1, 12), rng.randint(1, 28)),
        "time": "%d:%02d" % (rng.randint(8, 17), rng.choice((0, 15, 30, 45))),
        "room": "%s%d" % (rng.choice("ABCD"), rng.randint(101, 520)),
        "order": str(rng.randint(10 ** 9, 10 ** 10 - 1)),
        "price": "%d.%02d" % (rng.randint(5, 300), rng.randint(0, 99)),
        "site": rng.choice(("www.example.com", "edu.example.org", "help.example.net")),
        "n": str(rng.randint(3, 60)),
        "m": str(rng.choice((45, 60, 90, 120))),
        "phone": "400-%03d-%04d" % (rng.randint(100, 999), rng.randint(0, 9999)),
        "model": "%s%d-%s" % (rng.choice(("XR", "KT", "MX")), rng.randint(10, 99), rng.choice("ABCP")),
        "mah": str(rng.choice((2000, 3500, 4800, 5000))),
        "g": str(rng.randint(90, 250)),
        "temp": str(rng.randint(-5, 38)),
        "pct": str(rng.randint(20, 95)),
    }


def _numbers_line(rng):
    """Digits and punctuation: prices, dates, times, phone numbers, amounts."""
    kind = rng.randrange(6)
    if kind == 0:
        return "$%s.%02d" % ("{:,}".format(rng.randint(1, 99999)), rng.randint(0, 99))
    if kind == 1:
        return "%04d-%02d-%02d %02d:%02d" % (rng.randint(1990, 2035), rng.randint(1, 12),
                                            rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59))
    if kind == 2:
        return "+86 1%02d-%04d-%04d" % (rng.randint(30, 99), rng.randint(0, 9999), rng.randint(0, 9999))
    if kind == 3:
        return "(%03d) %03d-%04d" % (rng.randint(200, 989), rng.randint(200, 999), rng.randint(0, 9999))
    if kind == 4:
        return "%d/%d/%d, %d.%d%%" % (rng.randint(1, 12), rng.randint(1, 28), rng.randint(2000, 2030),
                                     rng.randint(0, 99), rng.randint(0, 9))
    return "No.%d  %d x %d.%02d = %s" % (rng.randint(1, 999), rng.randint(2, 9), rng.randint(1, 99),
                                         rng.randint(0, 99), "{:,}".format(rng.randint(100, 9999)))


# ---- fonts ----

_warned = set()


def font_path(name):
    return os.path.join(FONT_ROOT, ALL_FONTS[name][0])


def available(fonts):
    """The names in fonts whose files exist; a missing one is reported once on stderr."""
    out = []
    for name in fonts:
        if os.path.exists(font_path(name)):
            out.append(name)
        elif name not in _warned:
            _warned.add(name)
            sys.stderr.write("ocrset: skipping font %s: %s is missing (apt-get install %s)\n"
                             % (name, font_path(name), ALL_FONTS[name][1]))
    return out


_font_cache = {}


def load_font(name, size):
    key = (name, size)
    if key not in _font_cache:
        _font_cache[key] = ImageFont.truetype(font_path(name), size)
    return _font_cache[key]


# ---- rendering ----

def render_line(text, font, size, pad=None, ink=(0, 0, 0), paper=(255, 255, 255)):
    """One text line on plain paper, cropped to its ink plus pad pixels on every side (default
    size // 6): how a detector's crop of a printed line looks. font is a name of ALL_FONTS.
    Returns a BGR uint8 image."""
    f = load_font(font, size)
    pad = max(2, size // 6) if pad is None else pad
    left, top, right, bottom = f.getbbox(text)
    img = Image.new("RGB", (right - left + 2 * pad, bottom - top + 2 * pad), paper)
    ImageDraw.Draw(img).text((pad - left, pad - top), text, font=f, fill=ink)
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1])


def aspect(text, font, size, pad=None):
    """Width / height of render_line's image, without drawing it."""
    f = load_font(font, size)
    pad = max(2, size // 6) if pad is None else pad
    left, top, right, bottom = f.getbbox(text)
    return (right - left + 2 * pad) / float(bottom - top + 2 * pad)


# ---- the line set ----

ENGLISH_WORDS = ENGLISH.split()
LINES_PER_GROUP = 10
SIZES = (20, 28, 36, 48)


def _english_words(rng, count):
    """count consecutive words of the corpus, from the start of a random sentence."""
    starts = [i for i, w in enumerate(ENGLISH_WORDS) if i == 0 or ENGLISH_WORDS[i - 1].endswith(".")]
    i = rng.choice(starts)
    words = (ENGLISH_WORDS * 2)[i:i + count]
    return " ".join(words)


def _english_to_aspect(rng, font, size, target):
    """Consecutive corpus words until render_line's aspect reaches target."""
    starts = [i for i, w in enumerate(ENGLISH_WORDS) if i == 0 or ENGLISH_WORDS[i - 1].endswith(".")]
    words = (ENGLISH_WORDS * 2)[rng.choice(starts):]
    n = 1
    while aspect(" ".join(words[:n]), font, size) < target and n < len(words):
        n += 1
    return " ".join(words[:n])


def _chinese_chars(rng, count):
    """count consecutive characters of the Chinese corpus (sentences joined), from a sentence start."""
    text = "".join(CHINESE)
    starts = [0]
    for s in CHINESE[:-1]:
        starts.append(starts[-1] + len(s))
    i = rng.choice(starts)
    return (text * 2)[i:i + count]


def _line_groups(rng):
    """(group, list of text makers (font, size) -> text, fonts) of the line set."""
    latin, cjk = available(LATIN_FONTS), available(CJK_FONTS)
    return [
        ("en 4-8 words", lambda f, s: _english_words(rng, rng.randint(4, 8)), latin),
        ("en 12-16 words", lambda f, s: _english_words(rng, rng.randint(12, 16)), latin),
        ("en 60:1", lambda f, s: _english_to_aspect(rng, f, s, 60), latin),
        ("en 100:1", lambda f, s: _english_to_aspect(rng, f, s, 100), latin),
        ("zh 6-28 chars", lambda f, s: _chinese_chars(rng, rng.randint(6, 28)), cjk),
        ("zh 40 chars", lambda f, s: _chinese_chars(rng, 40), cjk),
        ("zh+en mixed", lambda f, s: rng.choice(MIXED).format(**_mixed_fields(rng)), cjk),
        ("digits", lambda f, s: _numbers_line(rng), latin + cjk),
    ]


def line_set(seed=0, per_group=LINES_PER_GROUP):
    """[(group, image, text)]: per_group lines of each group, fonts and sizes taken in turn, ink a
    random dark grey. A group whose fonts are all missing is left out (reported on stderr)."""
    rng = random.Random(seed)
    out = []
    for group, make_text, fonts in _line_groups(rng):
        if not fonts:
            sys.stderr.write("ocrset: group %r skipped: none of its fonts is installed\n" % group)
            continue
        for i in range(per_group):
            font, size = fonts[i % len(fonts)], SIZES[(i // len(fonts) + i) % len(SIZES)]
            text = make_text(font, size)
            grey = rng.randint(0, 60)
            out.append((group, render_line(text, font, size, ink=(grey,) * 3), text))
    return out


# ---- pages ----

def _rect_quad(left, top, right, bottom):
    return np.array([[left, top], [right, top], [right, bottom], [left, bottom]], np.float32)


def render_page(texts, font, size, margin=None, spacing=1.7, ink=(0, 0, 0), paper=(255, 255, 255)):
    """A page of text lines, one under another, left aligned; returns (BGR image, [(text, quad)])
    where quad is each line's ink box widened by render_line's pad (the crop a reader should make)."""
    f = load_font(font, size)
    pad = max(2, size // 6)
    margin = 2 * size if margin is None else margin
    boxes = [f.getbbox(t) for t in texts]
    width = max(b[2] - b[0] for b in boxes) + 2 * margin
    step = int(round(size * spacing))
    img = Image.new("RGB", (width, 2 * margin + step * len(texts)), paper)
    draw = ImageDraw.Draw(img)
    truth = []
    for i, (text, (left, top, right, bottom)) in enumerate(zip(texts, boxes)):
        x, y = margin, margin + i * step
        draw.text((x, y), text, font=f, fill=ink)
        truth.append((text, _rect_quad(x + left - pad, y + top - pad, x + right + pad, y + bottom + pad)))
    return np.ascontiguousarray(np.asarray(img)[:, :, ::-1]), truth


def transform_quads(truth, matrix):
    """Every quad of truth through a 2x3 affine or 3x3 perspective matrix."""
    m = np.asarray(matrix, np.float64)
    if m.shape == (2, 3):
        m = np.vstack([m, [0, 0, 1]])
    out = []
    for text, quad in truth:
        q = cv2.perspectiveTransform(np.asarray(quad, np.float64).reshape(1, 4, 2), m)
        out.append((text, q.reshape(4, 2).astype(np.float32)))
    return out


def rotate_page(img, truth, degrees, paper=(255, 255, 255)):
    """Turn the page counter-clockwise by degrees (any angle), the canvas grown to hold all of it."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(round(w * cos + h * sin)), int(round(w * sin + h * cos))
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    if degrees % 90 == 0:  # exact quarter turns: no resampling
        turn = {90: cv2.ROTATE_90_COUNTERCLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_CLOCKWISE}
        out = cv2.rotate(img, turn[degrees % 360]) if degrees % 360 else img.copy()
    else:
        out = cv2.warpAffine(img, m, (nw, nh), flags=cv2.INTER_CUBIC, borderValue=paper)
    return out, transform_quads(truth, m)


def photograph(img, truth, rng, size=None, background=None):
    """The page as a phone photo of it: on a desk, seen a little askew (perspective), under uneven
    light, slightly out of focus, with sensor noise and JPEG. size = (width, height) of the photo
    (default 1.2x the page). Returns (BGR image, truth through the same homography)."""
    h, w = img.shape[:2]
    pw, ph = size or (int(w * 1.2), int(h * 1.2))
    scale = min(pw / float(w), ph / float(h)) * 0.86
    cx, cy = pw / 2.0, ph / 2.0
    src = _rect_quad(0, 0, w, h)
    dst = np.array([[cx + (x - w / 2.0) * scale, cy + (y - h / 2.0) * scale] for x, y in src], np.float32)
    jitter = 0.05 * min(pw, ph)
    dst += np.array([[rng.uniform(-jitter, jitter), rng.uniform(-jitter, jitter)] for _ in range(4)],
                    np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    desk = background or tuple(rng.randint(60, 150) for _ in range(3))
    out = cv2.warpPerspective(img, m, (pw, ph), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                              borderValue=desk).astype(np.float32)
    out *= _uneven_light(pw, ph, rng)[:, :, None]
    sigma = rng.uniform(0.6, 1.2) * max(1.0, min(pw, ph) / 1500.0)
    out = cv2.GaussianBlur(out, (0, 0), sigma)
    noise = np.random.default_rng(rng.randrange(2 ** 32)).normal(0, 4.0, out.shape)
    out = np.clip(out + noise, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, rng.randint(55, 80)])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR), transform_quads(truth, m)


def _uneven_light(w, h, rng):
    """A light field: a linear fall-off in a random direction (0.65..1.05) times a soft vignette."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (xs / w - 0.5) * np.cos(angle) + (ys / h - 0.5) * np.sin(angle)
    light = 0.85 + 0.4 * ramp
    r2 = ((xs / w - 0.5) ** 2 + (ys / h - 0.5) ** 2) * 2
    return np.clip(light * (1.0 - 0.2 * r2), 0.5, 1.05)


def _english_lines(rng, count, words=(6, 14)):
    return [_english_words(rng, rng.randint(*words)) for _ in range(count)]


def _doc_lines(rng, font, size, count, aspects=(30, 60)):
    """Document-length English lines of 30:1 to 60:1 (as render_line would crop them)."""
    return [_english_to_aspect(rng, font, size, rng.uniform(*aspects)) for _ in range(count)]


def _page_rng(seed, name):
    """Each page group draws from its own generator: leaving groups out changes no other page."""
    return random.Random("%d/%s" % (seed, name))


def _clean_pages(seed, latin, cjk):
    """[(group, image, truth)]: two English pages, a 30-line document page, two Chinese pages."""
    rng = _page_rng(seed, "clean")
    pages = []
    if latin:
        pages += [("page en", *render_page(_english_lines(rng, 8), latin[i % len(latin)], 26 + 4 * i))
                  for i in range(2)]
        font = latin[1 % len(latin)]
        pages.append(("page doc 30 lines", *render_page(_doc_lines(rng, font, 22, 30), font, 22)))
    if cjk:
        pages += [("page zh", *render_page([_chinese_chars(rng, rng.randint(10, 24)) for _ in range(8)],
                                           cjk[i % len(cjk)], 28 + 4 * i)) for i in range(2)]
    return pages


PAGE_GROUPS = ("page en", "page doc 30 lines", "page zh", "photo en", "photo doc 30 lines", "photo zh",
               "photo 4000x3000", "skew 3-8 deg", "turned 90", "turned 180", "turned 270")


def page_set(seed=0, groups=PAGE_GROUPS):
    """[(group, BGR image, [(text, quad)])] of the groups named (default PAGE_GROUPS): clean pages,
    the same photographed, a 4000x3000 photo with ~40 px text, pages skewed 3-8 degrees and turned
    90/180/270. Fonts missing: those pages are left out (reported on stderr)."""
    latin, cjk = available(LATIN_FONTS), available(CJK_FONTS)
    wanted = set(groups)
    out = []
    if wanted & {g for g in PAGE_GROUPS if g.startswith(("page", "photo"))}:
        clean = _clean_pages(seed, latin, cjk)
        photos = [(g.replace("page", "photo"), *photograph(img, truth, _page_rng(seed, "photo %d" % i)))
                  for i, (g, img, truth) in enumerate(clean) if g.replace("page", "photo") in wanted]
        out += clean + photos
    if latin and "photo 4000x3000" in wanted:
        out.append(_big_photo(_page_rng(seed, "big"), latin[0]))
    if latin:
        out += _rotated(_page_rng(seed, "rotated"), latin, cjk)
    return [page for page in out if page[0] in wanted]


def _big_photo(rng, font):
    """A 4000x3000 photo of a page whose text is ~40 px high in the photo: a 640 px detector pass
    shrinks it to ~6 px."""
    img, truth = render_page(_doc_lines(rng, font, 48, 14, (25, 45)), font, 48)
    photo, truth = photograph(img, truth, rng, size=(4000, 3000))
    return ("photo 4000x3000", photo, truth)


def _rotated(rng, latin, cjk):
    """Pages skewed by 3-8 degrees (one English, one Chinese) and English pages turned 90/180/270."""
    out = []
    for i, font in enumerate([latin[0]] + cjk[:1]):
        texts = _english_lines(rng, 6) if i == 0 else [_chinese_chars(rng, rng.randint(10, 20)) for _ in range(6)]
        img, truth = render_page(texts, font, 30)
        angle = rng.choice((-1, 1)) * rng.uniform(3, 8)
        out.append(("skew 3-8 deg", *rotate_page(img, truth, angle)))
    for turn in (90, 180, 270):
        img, truth = render_page(_english_lines(rng, 6), latin[turn // 90 % len(latin)], 30)
        out.append(("turned %d" % turn, *rotate_page(img, truth, turn)))
    return out


# ---- scoring ----

def normal(text):
    """What a reader is judged on: NFKC (full- and half-width forms are one character), no spaces."""
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a, b):
    """Levenshtein distance between two sequences."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(ref, hyp):
    """Character error rate of hyp against ref: edit distance / len(ref), spaces removed from both
    (word gaps are counted apart by space_errors). An empty ref scores len(hyp) errors over 1."""
    r, h = normal(ref), normal(hyp)
    return edit_distance(r, h) / float(max(len(r), 1))


def _gaps(text):
    """(characters without spaces, set of indexes of characters followed by a word gap)."""
    chars, gaps = [], set()
    for ch in unicodedata.normalize("NFKC", text).strip():
        if ch.isspace():
            if chars:
                gaps.add(len(chars) - 1)
        else:
            chars.append(ch)
    return chars, gaps


def space_errors(ref, hyp):
    """Word gaps missed or invented: characters are aligned (edit distance, spaces removed) and,
    for each pair of equal aligned characters, a gap after one and not the other is one error."""
    rc, rg = _gaps(ref)
    hc, hg = _gaps(hyp)
    errors = 0
    for i, j in _aligned_pairs(rc, hc):
        errors += (i in rg) != (j in hg)
    return errors


def _aligned_pairs(a, b):
    """Index pairs (i, j) of equal characters on one optimal edit-distance alignment of a and b."""
    n, m = len(a), len(b)
    d = np.zeros((n + 1, m + 1), np.int32)
    d[:, 0], d[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i, j] = min(d[i - 1, j] + 1, d[i, j - 1] + 1, d[i - 1, j - 1] + (a[i - 1] != b[j - 1]))
    pairs, i, j = [], n, m
    while i and j:
        if a[i - 1] == b[j - 1] and d[i, j] == d[i - 1, j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j - 1] + 1:
            i, j = i - 1, j - 1
        elif d[i, j] == d[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def quad_areas(a, b):
    """(intersection, area of a, area of b) of two convex quads (4x2, any vertex order)."""
    pa = cv2.convexHull(np.asarray(a, np.float32).reshape(-1, 1, 2))
    pb = cv2.convexHull(np.asarray(b, np.float32).reshape(-1, 1, 2))
    inter, _ = cv2.intersectConvexConvex(pa, pb)
    return float(inter), float(cv2.contourArea(pa)), float(cv2.contourArea(pb))


def quad_iou(a, b):
    """Intersection over union of two convex quads (4x2, any vertex order)."""
    inter, area_a, area_b = quad_areas(a, b)
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def best_pairs(scored, thresh):
    """One-to-one pairs (i, j) from (iou, i, j) triples, best first, none under thresh."""
    used_i, used_j, out = set(), set(), []
    for iou, i, j in sorted(scored, reverse=True):
        if iou < thresh:
            break
        if i not in used_i and j not in used_j:
            used_i.add(i)
            used_j.add(j)
            out.append((i, j))
    return out
