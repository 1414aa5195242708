"""The improvement loop: a review queue of what the assistant did not understand,
answered with low confidence, handed to a person or was rated badly, and operators'
"wrong" marks on suggestions (``collect``); an admin assigns the right item and
intent, then accepts it into reviewable training and situation files (``queue``,
``export``)."""
