"""Provide the sandbox's fixed starting data and build its SCORM packages.

The users include every learner the sample payloads name, by email or by
account name, so that adapter tests can resolve them against the sandbox.
The data is the same on every start: ids, names and progress never vary.
"""

from __future__ import annotations

import html
import io
import zipfile
from xml.etree import ElementTree

SEED_TIME = "2024-01-15T09:00:00+00:00"
ZIP_DATE = (2024, 1, 15, 9, 0, 0)

# Reference tables: kind -> [(id, name)]. Users point at them by id.
RECORDS: dict[str, list[tuple[int, str]]] = {
    "country": [
        (1, "United Kingdom"),
        (2, "Ireland"),
        (3, "United States"),
        (4, "Germany"),
    ],
    "city": [
        (1, "London"),
        (2, "Manchester"),
        (3, "Dublin"),
        (4, "Boston"),
        (5, "Berlin"),
    ],
    "company": [
        (1, "Northwind Training Ltd"),
        (2, "Harbour Health Trust"),
        (3, "Brightside Retail"),
    ],
    "department": [
        (1, "Learning and Development"),
        (2, "Nursing"),
        (3, "Sales"),
        (4, "Engineering"),
        (5, "Customer Service"),
    ],
    "location": [
        (1, "Head Office"),
        (2, "North Site"),
        (3, "Remote"),
        (4, "Dublin Hub"),
    ],
    "job": [
        (1, "Instructional Designer"),
        (2, "Staff Nurse"),
        (3, "Sales Associate"),
        (4, "Software Engineer"),
        (5, "Team Leader"),
    ],
    "group": [
        (1, "New Starters"),
        (2, "Compliance 2024"),
        (3, "Managers"),
        (4, "Pilot Cohort"),
    ],
}

# Where a user sits: (country, city, company, department, location, job).
PROFILES: dict[str, tuple[int, int, int, int, int, int | None]] = {
    "london": (1, 1, 1, 1, 1, 1),
    "nursing": (1, 2, 2, 2, 2, 2),
    "dublin": (2, 3, 3, 3, 4, 3),
    "boston": (3, 4, 1, 4, 3, 4),
    "berlin": (4, 5, 2, 5, 3, None),
    "leads": (1, 1, 3, 5, 1, 5),
}

# (username, email, fname, lname, profile, group ids); ids follow the order.
USERS: list[tuple[str, str, str, str, str, list[int]]] = [
    ("xapi-test", "xapi-test@example.com", "Xavier", "Tester", "london", [1, 4]),
    ("learner1", "learner1@example.com", "Learner", "One", "nursing", [1, 2]),
    ("user", "user@example.com", "Uma", "Sample", "dublin", [2]),
    ("player-1", "player-1@example.com", "Player", "One", "boston", [4]),
    ("guest", "guest@example.com", "Gwen", "Guest", "berlin", []),
    ("admin", "admin@example.com", "Example", "Admin", "leads", [3]),
    ("teampb", "teampb@example.com", "Team", "PB", "leads", [3, 4]),
    ("13936749", "member.one@example.org", "Member", "One", "nursing", [2]),
    ("5323497", "lti.learner@example.org", "Lena", "Tools", "boston", [1]),
    (
        "43ce1094-a6e0-43f8-9368-5aac8352c357",
        "essay@example.org",
        "Esme",
        "Writer",
        "dublin",
        [4],
    ),
    ("xAPI account name", "xapi.account@example.org", "Ada", "Holder", "london", [2]),
    ("500-627-490", "scorm.profile@example.org", "Sam", "Profile", "boston", [2]),
    (
        "9678f235-4b77-478e-a536-d1e24655a61d",
        "h5p@example.org",
        "Hana",
        "Player",
        "berlin",
        [],
    ),
    ("learner-789", "commit@example.org", "Cory", "Commit", "boston", [1]),
    (
        "testing-golf-explained-learner-1",
        "golf@example.org",
        "Gail",
        "Fairway",
        "dublin",
        [4],
    ),
    ("12345", "student@example.org", "Stu", "Dent", "nursing", [1, 2]),
    ("primary", "primary@example.org", "Pria", "Mary", "leads", []),
]

# (id, name, type). SCORM packages are of type "e-learning".
LEARNING: list[tuple[int, str, str]] = [
    (1, "Fire Safety Awareness", "e-learning"),
    (2, "Data Protection Essentials", "e-learning"),
    (3, "Manual Handling in Practice", "classroom"),
    (4, "Customer Conversations That Work", "video"),
    (5, "Information Security Policy", "document"),
    (6, "Leading Effective Teams", "e-learning"),
    (7, "Infection Prevention and Control", "classroom"),
    (8, "Golf Explained: Rules and Etiquette", "e-learning"),
]

# (learning id, user id, status, score): assignments with a progress record.
PROGRESS: list[tuple[int, int, str, int | None]] = [
    (1, 1, "completed", 85),
    (2, 1, "in progress", None),
    (1, 2, "in progress", None),
    (4, 2, "completed", 100),
    (3, 3, "not attempted", None),
    (6, 6, "completed", 92),
    (2, 7, "in progress", None),
    (2, 9, "not attempted", None),
    (8, 15, "in progress", None),
]

# (learning id, user id): assignments that have no progress record yet.
ASSIGNMENTS: list[tuple[int, int]] = [
    (5, 1),
    (7, 2),
    (1, 4),
    (2, 5),
    (5, 6),
    (6, 7),
    (1, 8),
    (3, 10),
    (8, 11),
    (1, 12),
    (4, 13),
    (2, 14),
    (1, 16),
    (6, 17),
]

IMSCP_NS = "http://www.imsproject.org/xsd/imscp_rootv1p1p2"
ADLCP_NS = "http://www.adlnet.org/xsd/adlcp_rootv1p2"


def build_scorm_zip(learning_id: int, title: str) -> bytes:
    """Return a small SCORM 1.2 package for one learning resource as ZIP bytes.

    The entries carry a fixed date so the same resource always gives the same
    bytes.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        _write_entry(archive, "imsmanifest.xml", build_manifest(learning_id, title))
        _write_entry(archive, "index.html", _build_index_page(title))
    return buffer.getvalue()


def build_manifest(learning_id: int, title: str) -> bytes:
    """Return a SCORM 1.2 ``imsmanifest.xml`` with one SCO."""
    ElementTree.register_namespace("", IMSCP_NS)
    ElementTree.register_namespace("adlcp", ADLCP_NS)
    root = ElementTree.Element(
        _cp("manifest"),
        {"identifier": f"openelms.sandbox.learning.{learning_id}", "version": "1.0"},
    )

    metadata = ElementTree.SubElement(root, _cp("metadata"))
    ElementTree.SubElement(metadata, _cp("schema")).text = "ADL SCORM"
    ElementTree.SubElement(metadata, _cp("schemaversion")).text = "1.2"

    organizations = ElementTree.SubElement(root, _cp("organizations"), default="org1")
    organization = ElementTree.SubElement(
        organizations, _cp("organization"), identifier="org1"
    )
    ElementTree.SubElement(organization, _cp("title")).text = title
    item = ElementTree.SubElement(
        organization, _cp("item"), identifier="item1", identifierref="sco1"
    )
    ElementTree.SubElement(item, _cp("title")).text = title

    resources = ElementTree.SubElement(root, _cp("resources"))
    resource = ElementTree.SubElement(
        resources,
        _cp("resource"),
        {
            "identifier": "sco1",
            "type": "webcontent",
            f"{{{ADLCP_NS}}}scormtype": "sco",
            "href": "index.html",
        },
    )
    ElementTree.SubElement(resource, _cp("file"), href="index.html")
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _cp(tag: str) -> str:
    """Return a tag name in the IMS content packaging namespace."""
    return f"{{{IMSCP_NS}}}{tag}"


def _build_index_page(title: str) -> bytes:
    """Return the SCO's launch page, which reports completion when opened."""
    safe_title = html.escape(title)
    page = f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{safe_title}</title></head>
<body>
<h1>{safe_title}</h1>
<p>Sample content served by the Open ELMS sandbox.</p>
<script>
var api = window.parent && window.parent.API;
if (api) {{
  api.LMSInitialize("");
  api.LMSSetValue("cmi.core.lesson_status", "completed");
  api.LMSCommit("");
  api.LMSFinish("");
}}
</script>
</body>
</html>
"""
    return page.encode("utf-8")


def _write_entry(archive: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Add one file to the archive with the fixed entry date."""
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
