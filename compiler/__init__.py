"""compiler: trained .pt -> chip image for a 2D-mesh neuromorphic chip.

The compiler is a composition of passes, one module each (``compiler.compile`` composes them):
spec (chip description) -> from_checkpoint + integer_model (quantize; the chip's arithmetic) ->
partition -> connect -> place -> route -> rules -> image. ``reference`` is the integer model's
batched numpy implementation; ``inspect`` summarizes an image.
"""
