"""What the command lines share: argument types that refuse bad values while the command line
is parsed (before any work, before any file is created), and a help formatter that shows real
defaults only.

    p.add_argument("--epochs", type=positive_int)      # "--epochs 0" -> usage error, exit 2
"""
import argparse
from pathlib import Path


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" to an option's help, unless X is None or the help already says it."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _number(kind, test, wanted):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
        if not test(value):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value
    parse.__name__ = wanted            # argparse names the type in some messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "a whole number of 1 or more")
nonnegative_int = _number(int, lambda v: v >= 0, "a whole number of 0 or more")
positive_float = _number(float, lambda v: v > 0 and v != float("inf"), "a number above 0")
nonnegative_float = _number(float, lambda v: 0 <= v < float("inf"), "a number of 0 or more")
dropout_rate = _number(float, lambda v: 0 <= v < 1, "a probability in [0, 1)")


def int_list(text):
    """"16,32,64" -> (16, 32, 64), every entry 1 or more."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of whole "
                                         f"numbers, e.g. 16,32,64") from None
    if not all(v >= 1 for v in values):
        raise argparse.ArgumentTypeError(f"every entry must be 1 or more, got {text}")
    return values


def list_of(parse):
    """A type for comma-separated values, each checked by `parse`: list_of(positive_int)("1,3,5")
    -> (1, 3, 5); a bad entry gets parse's own message ("must be ..., got 0")."""
    def parse_list(text):
        return tuple(parse(part) for part in text.split(","))
    parse_list.__name__ = f"comma-separated {parse.__name__}"
    return parse_list


def existing_file(text):
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


def existing_dir(text):
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return text


def output_dir(text):
    """A folder to write into at the end (created then if missing): it must not be a file."""
    if Path(text).exists() and not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return text


def writable_file(text):
    """A file to write later: its folder must exist now, so no work is lost at the end."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
    if not path.resolve().parent.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: the folder {path.parent} does not exist")
    return text


def image_file(text):
    """An image to write later: a writable_file whose extension Pillow can write."""
    from PIL import Image
    writable_file(text)
    if Path(text).suffix.lower() not in Image.registered_extensions():
        raise argparse.ArgumentTypeError(f"{text}: give an image file name, e.g. attention.png")
    return text
