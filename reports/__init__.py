"""Reports, dashboard, audit log and LGPD tools.

Why a top-level app: reports read across ``inbox``, ``assistants`` and ``campaigns`` (and the
audit log listens to ``accounts`` and ``integrations``), so this app can only sit above all of
them in the dependency direction ``accounts`` ← ``integrations`` ← ``inbox`` ← (``assistants``,
``campaigns``) ← ``reports``. Nothing imports from ``reports``; the optional apps are looked up
with ``apps.is_installed`` so reports still work without them.
"""
