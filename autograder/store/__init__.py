"""Storage and reporting: the gradebook (SQL), the CSV/JSON exports, and per-student feedback pages.

Typical use after grading a batch into ``OUT``::

    with Gradebook(out / "gradebook.sqlite") as gradebook:
        gradebook.record_batch(batch)
        for result in results:
            gradebook.save(result, batch)  # one transaction per submission
            write_feedback(out, result, batch, titles, batch.lang)
        export_gradebook(gradebook, out)  # grades.csv + grades.json, rewritten atomically
"""

from .export import (
    atomic_write_text,
    export_gradebook,
    format_number,
    grades_csv_text,
    grades_json_data,
    write_grades_csv,
    write_grades_json,
)
from .feedback import feedback_path, render_feedback, safe_filename, write_feedback
from .gradebook import Gradebook, GradedRecord, database_url

__all__ = [
    "Gradebook",
    "GradedRecord",
    "atomic_write_text",
    "database_url",
    "export_gradebook",
    "feedback_path",
    "format_number",
    "grades_csv_text",
    "grades_json_data",
    "render_feedback",
    "safe_filename",
    "write_feedback",
    "write_grades_csv",
    "write_grades_json",
]
