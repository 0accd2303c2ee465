"""The editor's desk under ``/desk/``: server-rendered pages for the newsroom, signed in with
a desk account (``digest users``), each action allowed by the account's role.

``guard.py`` checks the session, role and CSRF token of every page and form; ``render.py``
draws the layout with the desk's headers; ``auth.py`` and ``second_factor.py`` sign people in
and out; each other module is one section.
"""

from __future__ import annotations

from fastapi import APIRouter


def desk_routers() -> list[APIRouter]:
    """The desk's routers, in the order they are mounted (fixed paths before ``/{id}`` ones)."""
    from digest.web.desk import account as desk_account
    from digest.web.desk import announcement_actions as desk_announcement_actions
    from digest.web.desk import announcements as desk_announcements
    from digest.web.desk import audit_page as desk_audit
    from digest.web.desk import auth as desk_auth
    from digest.web.desk import charts as desk_charts
    from digest.web.desk import editions as desk_editions
    from digest.web.desk import feeds as desk_feeds
    from digest.web.desk import home as desk_home
    from digest.web.desk import posts as desk_posts
    from digest.web.desk import reports as desk_reports  # engagement reports (issue 16)
    from digest.web.desk import second_factor as desk_second_factor
    from digest.web.desk import settings_page as desk_settings
    from digest.web.desk import strip as desk_strip
    from digest.web.desk import subscribers as desk_subscribers
    from digest.web.desk import subscribers_io as desk_subscribers_io
    from digest.web.desk import users as desk_users

    return [
        desk_auth.router,  # /desk/login, /desk/logout...: off (404) with DIGEST_DESK=false
        desk_home.router,  # /desk/: Today
        desk_strip.router,  # POST /desk/posts/strip: the Don't Miss order (before /{id})
        desk_posts.router,  # /desk/posts...: latest posts, Don't Miss, feature, alert
        desk_feeds.router,  # /desk/feeds...: health, add, poll now, remove
        desk_charts.router,  # /desk/charts/growth-30.svg...: Today's charts
        desk_settings.router,  # /desk/settings, POST /desk/settings/check (owners)
        desk_audit.router,  # /desk/audit
        desk_second_factor.router,  # /desk/login/code, /desk/login/enrol: TOTP at sign-in
        desk_account.router,  # /desk/account: own password, TOTP, sessions
        desk_users.router,  # /desk/users: the owner's accounts page
        desk_subscribers_io.router,  # /desk/subscribers/import, export.csv (before /{id})
        desk_subscribers.router,  # /desk/subscribers: search, a person's page, their actions
        desk_editions.router,  # /desk/editions...: counts, preview, test copy, alert form
        desk_announcements.router,  # /desk/announcements...: list, compose, edit
        desk_announcement_actions.router,  # /desk/announcements/{id}/...: preview, send, cancel
        # engagement reports (issue 16)
        desk_reports.router,  # /desk/reports: the latest mails' reports, readers per day
    ]
