"""Caption tokenization, matching Karpathy's Flickr8k/COCO preprocessing.

lowercase; '-' becomes a space; the characters ' . , " ; ? ! are deleted; split on white space.

    >>> tokenize("A dog's well-kept, muddy ball.")
    ['a', 'dogs', 'well', 'kept', 'muddy', 'ball']
"""
_DELETE = str.maketrans({"-": " ", "'": None, ".": None, ",": None, '"': None,
                         ";": None, "?": None, "!": None})


def tokenize(caption):
    """A caption string -> its list of lower-case word tokens."""
    return caption.lower().translate(_DELETE).split()
