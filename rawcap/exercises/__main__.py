"""python -m rawcap.exercises make | grade: exercise folders for a class, and their grader."""
import argparse
import sys

from ..student import StudentLayerError
from .grade import grade_folder, results_json, table, write_json
from .make import ORDER, make
from .solutions import exercises


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m rawcap.exercises",
        description="Write exercise folders (the layer files with solutions cut out) and grade them.")
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("make", help="write an exercise folder for students",
                            description="Copy the layer files that hold the chosen functions into "
                                        "FOLDER, each chosen function's solution replaced by a stub.")
    p.add_argument("--out", required=True, metavar="FOLDER", help="the folder to write (e.g. hw/)")
    p.add_argument("--only", metavar="NAMES",
                   help=f"comma-separated functions (default: {', '.join(ORDER)}; "
                        f"all: {', '.join(exercises())})")
    p.add_argument("--solutions", action="store_true",
                   help="keep the solutions in: an answer key that grades full marks")
    p.add_argument("--force", action="store_true", help="overwrite layer files already in FOLDER")
    p = commands.add_parser("grade", help="grade an exercise folder",
                            description="Run the gradient checks and forward oracles of every function "
                                        "the folder supplies; print points per function.")
    p.add_argument("folder", help="the exercise folder")
    p.add_argument("--json", metavar="PATH", help="also write the results here (Gradescope's results.json)")
    p.add_argument("--only", metavar="NAMES", help="grade only these comma-separated functions")
    args = parser.parse_args(argv)

    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    if args.command == "make":
        try:
            chosen = make(args.out, only, args.solutions, args.force)
        except (ValueError, OSError) as e:
            parser.error(str(e))
        kind = "answer key" if args.solutions else "exercises"
        print(f"wrote {args.out} ({kind}): {', '.join(chosen)}\n"
              f"grade with: python -m rawcap.exercises grade {args.out}")
        return 0
    try:
        grades = grade_folder(args.folder, only)
    except StudentLayerError as e:
        print(f"error: {e}", file=sys.stderr)
        if args.json:
            write_json(args.json, results_json([], error=e))
        return 2
    print("\n".join(table(grades)))
    for g in grades:
        if g.details:
            print(f"\n{g.function}: " + "\n    ".join(g.details))
    if args.json:
        write_json(args.json, results_json(grades))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
