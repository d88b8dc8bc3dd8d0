"""What people do with pairs: the label queue, rankings, review, agreement and stats."""
