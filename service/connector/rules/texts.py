"""Certification rules on texts: operation summaries (length, characters, sentence case), the labels of every
parameter and property (``x-ms-summary``, ``description``, ``x-ms-visibility``), and the document's ``info`` and
``x-ms-connector-metadata`` (title, description, contact, website, privacy policy, categories)."""

from __future__ import annotations

import re
import string
from typing import Any

from service.connector.spec import (
    ALLOWED_CATEGORIES,
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    PRODUCT_NAMES,
    PROPER_NOUNS,
    REQUIRED_CATEGORY,
    SUMMARY_FORBIDDEN,
    SUMMARY_MAX,
    TITLE_MAX,
    VISIBILITIES,
)


def check_summary(summary: Any, where: str) -> list[str]:
    if not isinstance(summary, str) or not summary.strip():
        return [f"{where}: summary is required"]
    problems = []
    if len(summary) > SUMMARY_MAX:
        problems.append(f"{where}: summary is {len(summary)} characters long (at most {SUMMARY_MAX})")
    bad = sorted(set(summary) & SUMMARY_FORBIDDEN)
    if bad:
        problems.append(f"{where}: summary contains restricted characters {''.join(bad)} (none of /\\<>*%&? allowed)")
    last = summary[-1]
    if last.isspace() or (last in string.punctuation and last != ")"):
        problems.append(f"{where}: summary must not end with punctuation or a space")
    words = summary.split()
    if not words[0][:1].isupper() and not words[0][:1].isdigit():
        problems.append(f"{where}: summary must be in sentence case (start with a capital letter)")
    titled = [w for w in (w.strip("()[],.;:'\"") for w in words[1:]) if re.fullmatch(r"[A-Z][a-z]+", w)
              and w not in PROPER_NOUNS]
    if titled:
        problems.append(f"{where}: summary must be in sentence case, not Title Case (capitalised: "
                        f"{', '.join(titled)})")
    return problems


def check_labels(node: dict, where: str) -> list[str]:
    problems = []
    label = node.get("x-ms-summary")
    if not isinstance(label, str) or not label.strip():
        problems.append(f"{where}: x-ms-summary is required")
    elif len(label) > SUMMARY_MAX:
        problems.append(f"{where}: x-ms-summary is longer than {SUMMARY_MAX} characters")
    desc = node.get("description")
    if not isinstance(desc, str) or not desc.strip():
        problems.append(f"{where}: description is required")
    vis = node.get("x-ms-visibility")
    if vis is not None and vis not in VISIBILITIES:
        problems.append(f"{where}: x-ms-visibility must be one of {', '.join(VISIBILITIES)}")
    return problems


def check_info(doc: dict) -> list[str]:
    problems = []
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    title = info.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append("info/title: title is required")
    else:
        if len(title) > TITLE_MAX:
            problems.append(f"info/title: title is {len(title)} characters long (at most {TITLE_MAX})")
        if re.search(r"\bapi\b", title, re.I) or "connector" in title.lower():
            problems.append("info/title: title must not contain 'API' or 'Connector'")
        if any(p in title.lower() for p in PRODUCT_NAMES):
            problems.append("info/title: title must not contain a Power Platform product name")
        if not title[-1].isalnum():
            problems.append("info/title: title must end with a letter or digit")
    desc = info.get("description")
    if not isinstance(desc, str) or not desc.strip():
        problems.append("info/description: description is required")
    else:
        if not DESCRIPTION_MIN <= len(desc) <= DESCRIPTION_MAX:
            problems.append(f"info/description: description is {len(desc)} characters long "
                            f"({DESCRIPTION_MIN} to {DESCRIPTION_MAX})")
        if re.search(r"\bapi\b", desc, re.I):
            problems.append("info/description: description must not contain 'API'")
    contact = info.get("contact")
    if not isinstance(contact, dict) or not any(contact.get(k) for k in ("name", "url", "email")):
        problems.append("info/contact: contact (name, url, email) is required")
    metadata = doc.get("x-ms-connector-metadata")
    if not isinstance(metadata, list):
        return problems + ["x-ms-connector-metadata: required (Website, Privacy policy, Categories)"]
    values = {m.get("propertyName"): m.get("propertyValue") for m in metadata if isinstance(m, dict)}
    for key in ("Website", "Privacy policy"):
        value = values.get(key)
        if not isinstance(value, str) or not value.startswith("https://"):
            problems.append(f"x-ms-connector-metadata: {key} is required, as an https URL")
    categories = [c.strip() for c in str(values.get("Categories") or "").split(";") if c.strip()]
    if REQUIRED_CATEGORY not in categories:
        problems.append(f"x-ms-connector-metadata: Categories must include {REQUIRED_CATEGORY}")
    unknown = [c for c in categories if c not in ALLOWED_CATEGORIES]
    if unknown:
        problems.append(f"x-ms-connector-metadata: unknown categories {', '.join(unknown)}")
    return problems
