"""Mesa agents of the compute market: vendors, foundries, clouds, labs and nations."""
