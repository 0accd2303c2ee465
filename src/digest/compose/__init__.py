"""The composer: which posts each subscriber gets, and how their digest looks."""
