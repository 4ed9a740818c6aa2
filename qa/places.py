"""The councils of England with adult social care duties, to recognise one however it is typed.

A question about a council the reports do not cover must be answered "not found", not with another
council's passages. Written with a capital ("And Leeds?"), such a place is recognised from the
corpus alone (`qa.conversation.Rewriter._place`); staff also type "same for leeds?", and a lower-case
word could be anything. This is reference data, not a list tuned on questions: the 153 councils with
adult social services responsibilities under the Care Act 2014 (county councils, metropolitan
boroughs, London boroughs and the City of London, unitary authorities, as they stood in April 2023),
and the short names they go by.

    >>> council_at(["same", "for", "leeds", "?"], 2)
    1
"""

from __future__ import annotations

import re
from functools import lru_cache

COUNTY_COUNCILS = (
    "Cambridgeshire", "Derbyshire", "Devon", "East Sussex", "Essex", "Gloucestershire", "Hampshire",
    "Hertfordshire", "Kent", "Lancashire", "Leicestershire", "Lincolnshire", "Norfolk", "Nottinghamshire",
    "Oxfordshire", "Staffordshire", "Suffolk", "Surrey", "Warwickshire", "West Sussex", "Worcestershire",
)
METROPOLITAN_BOROUGHS = (
    "Bolton", "Bury", "Manchester", "Oldham", "Rochdale", "Salford", "Stockport", "Tameside", "Trafford", "Wigan",
    "Knowsley", "Liverpool", "St Helens", "Sefton", "Wirral", "Barnsley", "Doncaster", "Rotherham", "Sheffield",
    "Gateshead", "Newcastle upon Tyne", "North Tyneside", "South Tyneside", "Sunderland", "Birmingham", "Coventry",
    "Dudley", "Sandwell", "Solihull", "Walsall", "Wolverhampton", "Bradford", "Calderdale", "Kirklees", "Leeds",
    "Wakefield",
)
LONDON = (
    "Barking and Dagenham", "Barnet", "Bexley", "Brent", "Bromley", "Camden", "Croydon", "Ealing", "Enfield",
    "Greenwich", "Hackney", "Hammersmith and Fulham", "Haringey", "Harrow", "Havering", "Hillingdon", "Hounslow",
    "Islington", "Kensington and Chelsea", "Kingston upon Thames", "Lambeth", "Lewisham", "Merton", "Newham",
    "Redbridge", "Richmond upon Thames", "Southwark", "Sutton", "Tower Hamlets", "Waltham Forest", "Wandsworth",
    "Westminster", "City of London",
)
UNITARY_AUTHORITIES = (
    "Bath and North East Somerset", "Bedford", "Blackburn with Darwen", "Blackpool",
    "Bournemouth, Christchurch and Poole", "Bracknell Forest", "Brighton and Hove", "Bristol", "Buckinghamshire",
    "Central Bedfordshire", "Cheshire East", "Cheshire West and Chester", "Cornwall", "Cumberland", "Darlington",
    "Derby", "Dorset", "Durham", "East Riding of Yorkshire", "Halton", "Hartlepool", "Herefordshire",
    "Isle of Wight", "Isles of Scilly", "Kingston upon Hull", "Leicester", "Luton", "Medway", "Middlesbrough",
    "Milton Keynes", "North East Lincolnshire", "North Lincolnshire", "North Northamptonshire", "North Somerset",
    "North Yorkshire", "Northumberland", "Nottingham", "Peterborough", "Plymouth", "Portsmouth", "Reading",
    "Redcar and Cleveland", "Rutland", "Shropshire", "Slough", "Somerset", "South Gloucestershire", "Southampton",
    "Southend-on-Sea", "Stockton-on-Tees", "Stoke-on-Trent", "Swindon", "Telford and Wrekin", "Thurrock", "Torbay",
    "Warrington", "West Berkshire", "West Northamptonshire", "Westmorland and Furness", "Wiltshire",
    "Windsor and Maidenhead", "Wokingham", "York",
)
#: Shorter names in common use ("Hull", "Stoke", "Southend"), each part of a joint name on its own.
SHORT_NAMES = (
    "Hull", "County Durham", "Stoke", "Southend", "Stockton", "Redcar", "Telford", "Newcastle", "Kingston",
    "Richmond", "Bournemouth", "Christchurch", "Poole", "Brighton", "Hove", "Blackburn", "Darwen", "Windsor",
    "Maidenhead", "Barking", "Dagenham", "Hammersmith", "Fulham", "Kensington", "Chelsea", "Bath", "St. Helens",
    "Saint Helens", "Isle of Wight",
)

ALL = COUNTY_COUNCILS + METROPOLITAN_BOROUGHS + LONDON + UNITARY_AUTHORITIES + SHORT_NAMES


def _key(text: str) -> tuple[str, ...]:
    """Lower-case words, a possessive dropped: "Leeds's" -> ("leeds",)."""
    return tuple(re.findall(r"[a-z]+", re.sub(r"['’]s?\b", "", text.lower())))


@lru_cache(maxsize=1)
def _names() -> tuple[dict[tuple[str, ...], str], int]:
    """Each name as lower-case words -> the name as written; and the most words a name has."""
    names = {_key(name): name for name in ALL}
    return names, max(len(k) for k in names)


def council_at(words: list[str], start: int) -> int:
    """How many of `words` from `start` name an English council (the longest name that fits, "north
    yorkshire" rather than nothing), in any case; 0 when none does. Punctuation inside a name
    ("Stoke-on-Trent" as one word, "Bournemouth, Christchurch") is skipped over."""
    names, longest = _names()
    best = 0
    parts: list[str] = []
    for end in range(start, min(len(words), start + 2 * longest)):
        key = _key(words[end])
        if not key:
            if end == start or words[end] not in {",", "-", "&"}:
                break
            continue
        parts.extend(key)
        if tuple(parts) in names:
            best = end + 1 - start
        if len(parts) >= longest:
            break
    return best


def name_of(text: str) -> str | None:
    """The council `text` names, as written in the list ("leeds" -> "Leeds"); None if it names none."""
    return _names()[0].get(_key(text))
