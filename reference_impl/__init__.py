"""The oracle: clean reference implementations of every assignment (instructor-only).

Hidden tests compare student outputs against these functions in the trusted
grader process. Nothing here ever reaches a student's process or bundle.
"""
