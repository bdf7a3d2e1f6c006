"""Exercises for a course: student copies of the layers, and a grader.

    python -m rawcap.exercises make --out hw/            # stubs for students to fill in
    python -m rawcap.exercises grade hw/ --json results.json

The solutions are marked in the layer sources (solutions.py); make.py cuts the copies,
cases.py lists what each function is checked on, grade.py scores a folder (rawcap.explain says
where a failing gradient goes wrong), planted.py holds five classic bugs for tests and demos.
rawcap.student runs rawcap with a folder's functions in place of the layers.
"""
