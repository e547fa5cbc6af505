"""The default priority rules every new model ships with (`rules.json` in its artifact).

They name cues that are urgent in any helpdesk (a service down for everyone, lost or corrupted
data, a security breach or leaked credentials, payments failing, work stopped) and nothing that
is only urgent in one. Each is written against false alarms: single-user trouble, questions,
denials ("no outage", "without data loss"), plans and drills, and past incidents already over do
not fire, and no text rule fires on a ticket that says it is not urgent. Edit a copy of the
artifact's `rules.json` for a helpdesk's own cues; `core.rules` documents the format.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.errors import InvalidRules
from core.rules import RULES_FORMAT, load_rules

_SERVICES = (
    r"(?:site|website|web ?site|service|services|server|servers|system|systems|app|apps|"
    r"application|platform|production|prod|api|portal|network|database|db|cluster|checkout|"
    r"e-?mail|mail server|vpn|store|shop|storefront|dashboard|everything|erp|crm|intranet|"
    r"login page|sso|wifi|wi-fi|internet|phones?|phone system)"
)
_DOWN = r"(?:down|offline|unreachable|unavailable|inaccessible|not loading|not responding)"

DEFAULT_RULES: dict[str, Any] = {
    "format": RULES_FORMAT,
    "version": "2026-12-04.1",
    "description": "Cues urgent in any helpdesk; shipped with ticket-enrich.",
    "order": ["low", "normal", "urgent"],
    "calm": [
        "not urgent",
        "non-urgent",
        "non urgent",
        "not an emergency",
        "not time sensitive",
        "not time-sensitive",
        "not critical",
        "no rush",
        "no hurry",
        "low priority",
        "whenever you get a chance",
        "whenever you have time",
        "when you get a chance",
        "when you have a moment",
        "at your convenience",
    ],
    "rules": [
        {
            "name": "outage",
            "minimum": "urgent",
            "keywords": [
                "outage",
                "incident",
                "down",
                "offline",
                "unreachable",
                "unavailable",
                "inaccessible",
                "not loading",
                "not responding",
                "nobody",
                "no one",
                "no-one",
                "none of",
                "for all",
                "for every",
                "for the whole",
                "for the entire",
                "on all",
                "on every",
                "bad gateway",
                "gateway time",
                "every user",
                "every account",
                "every customer",
                "every staff",
                "every employee",
                "every request",
                "all user",
                "all account",
                "all customer",
                "all staff",
                "all employee",
                "all request",
                "all our",
                "all agents",
                "all stores",
                "all sites",
                "all offices",
                "all clients",
                "every one of",
                "everyone",
            ],
            "description": "A service is down, or nobody can use it.",
            "phrases": [
                "outage",
                "major incident",
                "down for everyone",
                "down for all users",
                "down for all customers",
                "down for all of us",
            ],
            "patterns": [
                rf"\b{_SERVICES}\s+(?:is|are|was|went|has gone|have gone|has been|have been|"
                rf"seems|seems to be|appears|appears to be|keeps going|is completely|is totally|"
                rf"is still|are still|are all|is now)\s+(?:completely\s+|totally\s+)?{_DOWN}\b",
                r"\b(?:nobody|no one|no-one|none of (?:us|our (?:users|customers|staff)))\b"
                r"(?:\s+[\w'-]+){0,4}?\s+(?:can|could|is able to)\s+(?:log ?in|sign in|access|"
                r"connect|reach|use|work|load|open|send|receive)\b",
                r"\b(?:fail(?:s|ed|ing)?|crash(?:es|ed|ing)?|down|offline|unavailable|broken|"
                r"not working|timing out|returning (?:an? )?(?:error|50\d)\w*)\b[^.!?\n]{0,40}?"
                r"\bfor (?:all|every|everyone|everybody|the (?:whole|entire))\b",
                r"\b50[234]\s+(?:service unavailable|bad gateway|gateway time-?out)\b",
                r"\b(?:every|all)\s+(?:staff |user |customer )?(?:accounts?|users?|customers?|"
                r"staff|employees|requests?)\s+(?:gets?|getting|sees?|receives?|returns?)\s+"
                r"(?:an? )?(?:403|500|502|503|errors?)\b",
                r"\b(?:all|every one of)\s+(?:our\s+)?(?:users|customers|employees|staff|agents|"
                r"stores|sites|offices|clients)\s+(?:are|were|is|get|getting|see|seeing|have|"
                r"can't|cannot|can not)\s+(?:now\s+)?(?:locked out|getting errors|seeing errors|"
                r"affected|unable|down|offline|errors|an error|500|502|503|blank)",
                r"\b(?:500|502|503|504)\s+errors?\s+(?:for|on)\s+(?:all|every|everyone)\b",
                r"\beveryone\s+(?:is|gets|is getting|sees|is seeing)\s+(?:locked out|an? error|"
                r"errors|a blank page|500|502|503)",
            ],
            "unless": [
                r"\b(?:planned|scheduled)\s+(?:outage|maintenance|downtime)",
                r"\bmaintenance window\b",
                r"\b(?:post-?mortem|root cause analysis|rca|incident report|sla credit)\b",
                r"\b(?:back up|back online|working again|up again|is fine now|resolved itself|"
                r"has been restored|was restored|recovered)\b",
                r"\b(?:staging|test environment|sandbox|dev environment)\b",
                r"\b(?:drill|simulation|tabletop)\b",
                r"\boutage (?:notifications?|notices?|alerts? (?:by|via)|e-?mails?|history|"
                r"page|report)\b",
            ],
        },
        {
            "name": "data_loss",
            "minimum": "urgent",
            "keywords": [
                "loss",
                "corrupt",
                "lost",
                "gone",
                "deleted",
                "wiped",
                "erased",
                "missing",
                "overwritten",
                "destroyed",
            ],
            "description": "Data lost, deleted or corrupted.",
            "phrases": ["data loss", "data corruption", "lost all our data", "lost all my data"],
            "patterns": [
                r"\b(?:data|database|db|files|records|orders|tables?|backups?|documents|"
                r"emails|mailbox|repository|repo|projects|products|catalogue|catalog|share|drive|"
                r"folder|volume|reports|workspace)\s+(?:is|are|was|were|has been|have been|got|"
                r"seems|seem|appears|appear)\s+(?:to be\s+)?(?:all\s+)?(?:lost|gone|deleted|"
                r"wiped|erased|corrupted|corrupt|missing|overwritten|destroyed)\b",
                r"\bcorrupt(?:ed)?\s+(?:data|database|db|files|records|tables?|backups?|index)\b",
                r"\b(?:deleted|wiped|erased|lost)\s+(?:all|every|everything|the whole|"
                r"the entire)\b",
                r"\b(?:all|every|everything)\b[^.!?\n]{0,60}?\b(?:are|is|were|was|has been|"
                r"have been)\s+(?:gone|lost|deleted|wiped|erased)\b",
                r"\blost\s+(?:a|an|one|two|three|several|\d+)\s+(?:hours?|days?|weeks?|months?)"
                r"\s+of\b",
            ],
            "unless": [
                r"\b(?:retention|gdpr|right to be forgotten|delete my account|close my account)\b",
                r"\b(?:restored|recovered|got it back|found it|found them)\b",
                r"\bfrom (?:the )?(?:recycle bin|trash)\b",
            ],
        },
        {
            "name": "security_breach",
            "minimum": "urgent",
            "keywords": [
                "breach",
                "incident",
                "ransomware",
                "takeover",
                "unauthori",
                "hacked",
                "compromised",
                "leaked",
                "exposed",
                "stolen",
                "posted",
                "published",
                "malware",
                "public repo",
                "public github",
                "public gitlab",
                "public bucket",
                "public forum",
                "public paste",
                "sending e",
                "sending messages",
                "sending spam",
                "injected",
                "someone",
            ],
            "description": "A breach, a compromise or leaked credentials.",
            "phrases": [
                "security breach",
                "data breach",
                "security incident",
                "ransomware",
                "account takeover",
                "unauthorized access",
                "unauthorised access",
            ],
            "patterns": [
                r"\b(?:we|i|site|website|server|account|accounts|system|systems|store|shop)\s+"
                r"(?:have been|has been|got|were|was|are being|is being)\s+(?:hacked|breached|"
                r"compromised)\b",
                r"\b(?:leaked|exposed|stolen|compromised)\s+(?:credentials|passwords?|api keys?|"
                r"keys|tokens?|secrets?|customer data|card data|card numbers|database)\b",
                r"\b(?:credentials|passwords?|api keys?|access keys?|tokens?|secrets?|"
                r"customer data|card data|card details|card numbers)\s+(?:were|was|have been|"
                r"has been|got|are|is|may have been|might have been)\s+(?:leaked|exposed|stolen|"
                r"posted|published|compromised)\b",
                r"\bmalware\s+(?:on|infection|found|detected)\b",
                r"\b(?:keys?|credentials|passwords?|tokens?|secrets?)\b[^.!?\n]{0,30}?\b(?:to|on|"
                r"in) (?:a )?public (?:github |gitlab )?(?:repo|repository|bucket|forum|paste)",
                r"\bsending (?:e-?mails|messages|spam)\s+(?:i|we)\s+(?:didn't|did not|never)\s+"
                r"(?:write|send|wrote|sent)\b",
                r"\b(?:laptop|phone|device|computer|hard drive|usb (?:stick|drive))\s+(?:was|has "
                r"been|got|were)\s+stolen\b",
                r"\b(?:script|code)\b[^.!?\n]{0,20}?\binjected\b|\binjected\s+(?:a\s+)?"
                r"(?:script|code)\b",
                r"\bsomeone\s+(?:else\s+)?(?:logged|has logged|is logging|accessed|has accessed)"
                r"\s+(?:in|into)\b",
            ],
            "unless": [
                r"\b(?:security (?:training|awareness|questionnaire|review|audit)|"
                r"penetration test|pen ?test|phishing (?:test|simulation|training))\b",
                r"\b(?:drill|simulation|tabletop|hypothetical)\b",
            ],
        },
        {
            "name": "payments_failing",
            "minimum": "urgent",
            "keywords": [
                "payment",
                "transaction",
                "orders",
                "checkout",
                "check out",
                "billing",
                "pay",
                "complete their",
                "complete a",
                "complete order",
                "complete purchase",
                "complete payment",
                "complete checkout",
                "place order",
                "place an order",
                "buy anything",
                "charged",
                "billed",
            ],
            "description": "Payments or checkout fail for customers, not for one card.",
            "patterns": [
                r"\b(?:payments|transactions|card payments|orders|checkouts)\s+(?:are|have been|"
                r"keep|started|all|are all)\s+(?:all\s+)?(?:failing|failed|being declined|"
                r"declined|rejected|erroring|not going through|broken)\b",
                r"\b(?:checkout|payment page|payment gateway|payment processing|payments|"
                r"payment system|billing system)\s+(?:is|are|has|have)?\s*(?:down|broken|"
                r"failing|not working|erroring|stopped working)\b",
                r"\b(?:(?:customers|users|buyers|shoppers)\s+(?:can't|cannot|can not|are unable "
                r"to)|(?:nobody|no one)\s+(?:can|is able to))\s+(?:pay|check ?out|complete "
                r"(?:their |a )?(?:orders?|purchases?|payments?|checkout)|place (?:an )?orders?|"
                r"buy anything)\b",
                r"\b(?:every|all)\b[^.!?\n]{0,40}?\b(?:charged|billed)\s+(?:twice|two times|"
                r"three times|multiple times)\b",
                r"\b(?:all|every)\s+(?:payments|transactions|card payments|orders)\s+"
                r"(?:are|get|is|gets|being)\s+(?:failing|declined|rejected)\b",
            ],
        },
        {
            "name": "work_stopped",
            "minimum": "urgent",
            "keywords": [
                "blocked",
                "stopped",
                "halted",
                "standstill",
                "whole",
                "entire",
                "nobody",
                "no one",
                "none of us",
                "completely",
                "line is down",
                "lines are down",
                "dead in the water",
            ],
            "description": "Production or a whole team is blocked.",
            "phrases": ["production is blocked", "production blocked", "dead in the water"],
            "patterns": [
                r"\b(?:production|prod|the (?:production )?line|factory|warehouse|shipping|"
                r"fulfilment|fulfillment)\s+(?:is|has|are)\s+(?:completely\s+)?(?:blocked|"
                r"stopped|halted|at a standstill)\b",
                r"\b(?:whole|entire)\s+(?:team|company|office|department|floor|staff|warehouse)"
                r"\s+(?:is|are|has been|have been)\s+(?:blocked|unable|locked out|offline|"
                r"down|stuck|stopped)\b",
                r"\b(?:nobody|no one|none of us)\s+(?:here\s+)?(?:can|is able to)\s+work\b",
                r"\bcompletely (?:blocked|stuck)\b",
                r"\b(?:production|assembly|packing)\s+lines?\s+(?:have|has|are|is)\s+"
                r"(?:stopped|halted|down)\b",
            ],
        },
        {
            "name": "severity_field",
            "minimum": "urgent",
            "description": "The requester chose the highest severity or impact on the form.",
            "fields": {
                "severity": ["critical", "sev1", "sev 1", "s1", "p1"],
                "impact": [
                    "everyone",
                    "all users",
                    "whole company",
                    "entire organisation",
                    "entire organization",
                ],
            },
        },
    ],
}


def default_rules_for(labels: Sequence[str]) -> dict[str, Any] | None:
    """The default rules for a model with these priority labels, or None when they name a
    label the model lacks (a model with other priority names ships no default rules)."""
    try:
        load_rules(DEFAULT_RULES, labels)
    except InvalidRules:
        return None
    return DEFAULT_RULES
