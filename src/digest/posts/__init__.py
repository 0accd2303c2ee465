"""Posts: reading them from the site's feeds, cleaning them, storing them, and featuring them.

``fetch`` (HTTP, SSRF guard), ``parse`` (picks the parser for a source's bytes) over
``syndication`` (RSS, Atom) and ``wordpress`` (REST JSON), both making the ``entries`` types
(``PostData``, ``ParsedFeed``); ``sanitize`` (untrusted HTML), ``featuring`` (pure "Don't Miss"
rules), ``store`` (the posts table), ``feeds`` (the feeds table), ``poll`` (``import_source``
and the scheduler's ``poll_all``), ``samples`` (the demo feed).

Nothing is imported here on purpose: the composer imports ``digest.posts.featuring`` and must not
pull in HTTP or feed parsing with it.
"""
