"""The demo show that a fresh start creates: an episode in the style of 先锋擂台."""

import logging
import secrets
import time

from .domain import DEFAULT_COLORS, DEFAULT_SIDE_NAMES
from .domain.questions import APPROVED, Question
from .domain.show import new_show
from .store import Conflict, Store

log = logging.getLogger("leitai")

DEMO_SLUG = "demo"

SIDES = {
    "a": {"name": DEFAULT_SIDE_NAMES["a"], "guest": "王伟", "org": "澳洋医院党委副书记", "color": DEFAULT_COLORS["a"]},
    "b": {
        "name": DEFAULT_SIDE_NAMES["b"],
        "guest": "杨玭",
        "org": "市公益组织联合会党支部书记",
        "color": DEFAULT_COLORS["b"],
    },
}

PLAN = [
    {"topic": "社会治理：怎样让群众少跑腿、好办事", "duration_s": 300},
    {"topic": "服务群众：两新党建如何走到群众身边", "duration_s": 300},
    {"topic": "基层民主：让党员群众真正参与决策", "duration_s": 240},
]

QUESTIONS = [
    ("医院和公益组织的党建工作，最大的不同在哪里？", "市民 李女士"),
    ("“先锋党课送基层”什么时候来我们工业园区？", "南丰镇 小陈"),
    ("志愿者服务怎样和社区治理结合起来？", ""),
]


async def ensure_demo(store: Store, settings) -> bool:
    """Create the demo show if there is no show at all; True if it was created."""
    if await store.list_shows():
        return False
    now = int(time.time() * 1000)
    state = new_show(
        DEMO_SLUG,
        "先锋擂台 · 书记PK",
        SIDES,
        PLAN,
        time.strftime("%Y-%m-%d"),
        now,
        status="live",
        overlay_key=secrets.token_urlsafe(12),
    )
    try:
        await store.create_show(state)
    except Conflict:
        return False  # another process made it first
    events = []
    for i, (text, name) in enumerate(QUESTIONS):
        qid = await store.next_question_id(DEMO_SLUG)
        q = Question(qid, text, name, APPROVED, now + i, "demo", 0)
        events.append({"type": "question", "question": q.record()})
    await store.commit(DEMO_SLUG, events)
    log.info("created the demo show %r", DEMO_SLUG)
    return True
