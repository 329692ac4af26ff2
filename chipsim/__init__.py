"""chipsim: event-driven, cycle-level, bit-exact simulation of a chip image (imports no torch).

NOT IMPLEMENTED YET (issue 4). Nothing here is usable today.
"""
