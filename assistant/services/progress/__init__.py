"""Application progress (办件进度): the records and their numbers (``records``), where
they come from (``providers``: local tables or a case-management system over HTTP),
the phone-check lockout (``guard``) and the CSV import (``importer``, with the demo
data beside it). The dialogue's progress form is in ``actions/progress.py``."""
