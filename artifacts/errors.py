"""The one exception type for problems a user can fix.

The CLI turns a ``UserError`` into one line on stderr and exit status 2, with no traceback.
Anything else that escapes is a bug in spikemesh and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: a missing or corrupt file, a wrong shape, a spec that cannot hold the network.

    The message is one sentence that names the problem and the fix.
    """
