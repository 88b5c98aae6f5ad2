"""The synthetic micro-expression generator: AU fields warped onto real faces, as clip sets and long test videos."""
