"""The console's files: shipped inside the package, complete, and free of the ways a page runs
text as code.

The page is plain ES modules (no build step), read with ``importlib.resources`` from the
installed package (hatch ships ``src/outlast`` whole). Every file the page or a module names
must be one of them, and no module may use ``innerHTML``, ``eval`` or their relatives: agent
output only ever reaches the page as text (the browser tests check the page itself).
"""

from __future__ import annotations

import re
from importlib.resources import files

from outlast.console.pages import assets

STATIC = files("outlast.console").joinpath("static")


def test_the_console_files_are_resources_of_the_installed_package() -> None:
    names = {entry.name for entry in STATIC.iterdir()}
    assert {"index.html", "app.js", "app.css", "markdown.js"} <= names
    assert set(assets()) == {
        n for n in names if n.rsplit(".", 1)[-1] in ("html", "js", "css", "svg")
    }


def test_every_file_the_page_and_its_modules_name_is_served() -> None:
    served = assets()
    page = served["index.html"][0].decode()
    named = re.findall(r'(?:src|href)="/console/static/([^"]+)"', page)
    for name, (body, _) in served.items():
        if name.endswith(".js"):
            named += re.findall(r'from "\./([^"]+)"', body.decode())
    assert named and set(named) <= set(served)


def test_no_module_turns_text_into_html_or_code() -> None:
    forbidden = re.compile(
        r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|"
        r"setTimeout\(\s*[\"'`]|DOMParser|createContextualFragment"
    )
    for name, (body, _) in assets().items():
        if name.endswith(".js"):
            assert not forbidden.findall(body.decode()), name
