"""The demo show that a fresh start creates: an episode in the style of 先锋擂台."""

import logging
import secrets
import time

from .domain import DEFAULT_COLORS, DEFAULT_SIDE_NAMES
from .domain.questions import APPROVED, Question
from .domain.show import new_show
from .node.season import Season
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


# The season's demo: four of the article's guests (the first episode's two, two of the
# "先锋工匠"), the poll "我最喜欢的书记", and the talk of 8月31日 (47 party workers).
GUESTS = [
    {"name": "王伟", "title": "党委副书记", "org": "澳洋医院", "sector": "hospital",
     "bio": "首期《先锋擂台》擂主。民营医院党建：把党组织建在科室上，让党员成为医患之间的连心桥。",
     "topics": ["民营医院党建", "服务群众"]},
    {"name": "杨玭", "title": "党支部书记、会长", "org": "张家港市公益组织联合会", "sector": "charity",
     "bio": "首期《先锋擂台》擂主。公益组织党建：志愿服务与社区治理结合，党员带头做公益。",
     "topics": ["社会组织党建", "志愿服务"]},
    {"name": "姜忠宝", "title": "党支部书记", "org": "可隆科技（张家港）特种纺织品有限公司", "sector": "foreign",
     "bio": "外资企业党组织书记：在外企里把党建做成凝聚人心的工作。", "topics": ["外企党建", "非公企业党建"]},
    {"name": "郭本平", "title": "党办负责人", "org": "中粮东海粮油工业（张家港）有限公司", "sector": "soe",
     "bio": "“先锋工匠”之一，国企党务工作者。", "topics": ["国企党建", "党务干部培训"]},
]  # fmt: skip


async def ensure_season_demo(season: Season) -> dict[str, str]:
    """The demo's roster, poll and a talk held, if the roster is empty: {name: guest id}."""
    if await season.guests():
        return {}
    ids = {}
    for data in GUESTS:
        ids[str(data["name"])] = (await season.create_guest(data)).id
    await season.create_poll(
        {"slug": "favourite", "title": "我最喜欢的书记", "reveal": "live",
         "options": [{"id": gid, "label": ""} for gid in ids.values()]}
    )  # fmt: skip
    await season.talks.add(
        {"kind": "lesson", "title": "非公企业党务干部党课", "guest_ids": [ids["郭本平"]], "date": "2017-08-31",
         "place": "南丰镇机电工业园区", "district": "南丰镇", "status": "done", "attendance": 47}
    )  # fmt: skip
    return ids


async def ensure_demo(store: Store, settings, season: Season | None = None) -> bool:
    """Create the demo show if there is no show at all; True if it was created."""
    if await store.list_shows():
        return False
    now = int(time.time() * 1000)
    sides = SIDES
    if season is not None:
        ids = await ensure_season_demo(season)
        if ids:
            sides = {"a": {**SIDES["a"], "guest_id": ids["王伟"]}, "b": {**SIDES["b"], "guest_id": ids["杨玭"]}}
            sides = await season.with_guests(sides)
    state = new_show(
        DEMO_SLUG,
        "先锋擂台 · 书记PK",
        sides,
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
