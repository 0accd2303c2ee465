"""The editor's desk under ``/desk/``: server-rendered pages for the newsroom, signed in with
a desk account (``digest users``), each action allowed by the account's role.

``auth.py`` signs people in and out and guards every page; each other module is one page.
"""
