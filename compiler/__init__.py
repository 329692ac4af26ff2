"""compiler: trained .pt -> chip image for a 2D-mesh neuromorphic chip.

NOT IMPLEMENTED YET (issue 3): chip spec, integer model, lower/partition/place/route passes,
design-rule checks and the chip image format land there. Nothing here is usable today.
"""
