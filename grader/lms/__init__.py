"""Canvas and Moodle as they are: their download zips, their grade files, and the roster that maps
their ids.
"""
