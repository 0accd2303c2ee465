"""Where mail templates come from: the operator's folder first, file by file, then ours.

Template sets follow django-newsletter's habit: ``{action}_subject.txt``, ``{action}.txt`` and
``{action}.html`` for each mail (``digest``, ``confirm``, ``welcome``); the HTML ones extend
``layout.html`` (the short notes, confirm and welcome, through ``note.html``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta, nodes

from digest.errors import TemplateProblem
from digest.resources import templates_dir


def load_templates(env: jinja2.Environment, names: tuple[str, ...]) -> dict[str, jinja2.Template]:
    """Compile ``names`` and the layouts they extend now, so a broken override (a layout too)
    stops start-up instead of an edition."""
    return {name: _compile(env, name) for name in with_references(env, names)}


def with_references(env: jinja2.Environment, names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` and every template they extend, include or import by name, each once."""
    found = dict.fromkeys(names)
    pending = list(names)
    while pending:
        name = pending.pop()
        _compile(env, name)  # a syntax error is reported as the template's own, with its line
        for ref in meta.find_referenced_templates(env.parse(_source(env, name))):
            # A name computed at render time (None here) cannot be known in advance.
            if ref is not None and ref not in found:
                found[ref] = None
                pending.append(ref)
    return tuple(found)


def prints_only(env: jinja2.Environment, names: tuple[str, ...], variable: str) -> bool:
    """Whether ``variable`` is only ever printed as it is (``{{ variable }}``) in ``names`` and
    everything they extend, include or import: what a value put in after rendering needs."""
    for name in with_references(env, names):
        tree = env.parse(_source(env, name))
        if None in meta.find_referenced_templates(tree):
            return False  # a template chosen at render time: its uses cannot be known
        for output in list(tree.find_all(nodes.Output)):
            output.nodes = [n for n in output.nodes if not _names(n, variable)]
        # With the bare prints taken out, any use left (a filter, a test, a loop) disqualifies.
        if any(_names(n, variable) for n in tree.find_all(nodes.Name)):
            return False
    return True


def _names(node: nodes.Node, variable: str) -> bool:
    return isinstance(node, nodes.Name) and node.name == variable


def _compile(env: jinja2.Environment, name: str) -> jinja2.Template:
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"template {name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.TemplateNotFound:
        raise TemplateProblem(f"template {name} not found") from None


def _source(env: jinja2.Environment, name: str) -> str:
    if env.loader is None:
        raise ValueError("environment has no loader")
    source, _, _ = env.loader.get_source(env, name)
    return source


def render(template: jinja2.Template, context: dict[str, Any]) -> str:
    """``template`` rendered, any template error as one TemplateProblem line."""
    try:
        return template.render(context)
    except jinja2.TemplateError as exc:
        raise TemplateProblem(f"template {template.name}: {exc.message or exc}") from None


def make_environment(*override_dirs: Path | str | None) -> jinja2.Environment:
    """A Jinja2 environment: autoescaped HTML, plain text left alone, overrides looked up first,
    file by file, in the order given (a newsletter's folder, then ``DIGEST_TEMPLATES_DIR``).

    Undefined variables raise: a typo in an operator's template must fail the render, not send
    thousands of mails with a blank where the link should be.
    """
    loaders: list[jinja2.BaseLoader] = [
        jinja2.FileSystemLoader(d) for d in dict.fromkeys(str(d) for d in override_dirs if d)
    ]
    loaders.append(jinja2.FileSystemLoader(str(templates_dir())))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Compiled templates are kept for the life of the renderer; an operator's edit is
        # picked up at the next start, not half-way through an edition.
        auto_reload=False,
        cache_size=64,
    )


def template_version(env: jinja2.Environment, names: tuple[str, ...]) -> str:
    """A short hash of the sources of ``names`` and the layouts they extend: part of every body
    key, so an edited template (or layout) never shares a body rendered from the old one."""
    sha = hashlib.sha256()
    for name in with_references(env, names):
        sha.update(name.encode() + b"\0" + _source(env, name).encode("utf-8") + b"\0")
    return sha.hexdigest()[:16]
