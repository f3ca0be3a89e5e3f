"""A clip's MEGC 2018 objective class, from its action units, as the synthetic sheets write it (a number 1-7).

The classes are the AU table of Davison, Merghani and Yap, "Objective Classes for Micro-Facial Expression
Recognition", J. Imaging 4(10):119, 2018 (arXiv 1708.07549). The table below was checked against its
reproduction in Merghani, Davison and Yap, "A Review on Facial Micro-Expressions Analysis: Datasets, Features
and Metrics", arXiv 1805.02397v1, Table 9, p. 14 (its "A23" read as AU23); the table's number and page in
1708.07549 itself could not be checked here. Class VII is "others": every combination the table does not list.

The rule applied: a clip's set of AU numbers (sides L/R ignored) equal to one listed combination gives that
class; anything else is VII. So the class follows from which muscles move, as the clip's motion does, in every
layout alike.
"""

from __future__ import annotations

from collections.abc import Iterable

OTHERS = 7
TABLE: dict[int, tuple[frozenset[int], ...]] = {
    class_: tuple(frozenset(c) for c in combos)
    for class_, combos in {
        1: ({6}, {12}, {6, 12}, {6, 7, 12}, {7, 12}),
        2: ({1, 2}, {5}, {25}, {1, 2, 25}, {25, 26}, {5, 24}),
        3: ({23}, {4}, {4, 7}, {4, 5}, {4, 5, 7}, {17, 24}, {4, 6, 7}, {4, 38}),
        4: ({10}, {9}, {4, 9}, {4, 40}, {4, 5, 40}, {4, 7, 9}, {4, 9, 17}, {4, 7, 10}, {4, 5, 7, 9}, {7, 10}),
        5: ({1}, {15}, {1, 4}, {6, 15}, {15, 17}),
        6: ({1, 2, 4}, {20}),
    }.items()
}
_CLASS_OF = {combo: class_ for class_, combos in TABLE.items() for combo in combos}


def objective_class(aus: Iterable[tuple[int, str]]) -> int:
    """The class (1-7) of a clip showing the (AU number, side) list ``aus``."""
    return _CLASS_OF.get(frozenset(number for number, _ in aus), OTHERS)
