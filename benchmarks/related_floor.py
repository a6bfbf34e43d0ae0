"""Calibrates `related_threshold`: the cosine from which a verbatim add lists a stored memory as
`related` (one the new text may duplicate, refine or contradict).

The pairs below are our own: a stored fact and a later one about the same thing (a job change, a
move, a diet flip, a new partner, a pet that died, a correction, a refinement), and pairs of facts
about different things of one person. The floor should list nearly every same-thing pair while
keeping unrelated ones out; the script prints both rates per floor with the bundled model and
writes JSON.

    python benchmarks/related_floor.py [--out benchmarks/results/related_floor.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

SAME_THING = [
    ("Works as a backend engineer at Stripe", "Started a new job at Anthropic"),
    ("Lives in Berlin", "Moved to Lisbon last month"),
    ("Is vegetarian", "Started eating fish again"),
    ("Has a dog named Pixel", "Pixel died last week"),
    ("Prefers dark roast coffee", "Switched to green tea"),
    ("Dating Sam", "Broke up with Sam and now dating Alex"),
    ("Drives a Honda Civic", "Sold the car and bikes to work now"),
    ("Learning Spanish", "Gave up Spanish, learning Japanese instead"),
    ("Runs 5 km every morning", "Stopped running after a knee injury"),
    ("Favourite editor is Vim", "Uses VS Code for everything now"),
    ("Studies medicine in Leipzig", "Graduated and works as a doctor in Dresden"),
    ("Has two cats", "Adopted a third cat"),
    ("Allergic to peanuts", "The peanut allergy test came back negative"),
    ("Plays guitar in a band", "Left the band to focus on work"),
    ("Birthday is on May 3", "My birthday is actually on May 13, not May 3"),
    ("Uses Python 3.9 at work", "The team upgraded to Python 3.12"),
    ("Married to Chris", "Divorced from Chris last year"),
    ("Wants to visit Japan in spring", "Booked flights to Tokyo for April"),
    ("Works remotely from home", "Goes to the office three days a week now"),
    ("Prefers window seats on flights", "Likes aisle seats these days"),
    ("Trains for a marathon", "Finished the Berlin marathon in 4 hours"),
    ("Reads mostly science fiction", "Has been reading history books lately"),
    ("Sleeps about six hours a night", "Now goes to bed early and sleeps eight hours"),
    ("Owns a flat in Munich", "Sold the flat in Munich and rents in Hamburg"),
]
DIFFERENT = [
    ("Works as a backend engineer at Stripe", "Prefers pytest over unittest"),
    ("Lives in Berlin", "Allergic to peanuts"),
    ("Is vegetarian", "Plays guitar in a band"),
    ("Has a dog named Pixel", "Uses Python 3.9 at work"),
    ("Prefers dark roast coffee", "Wants to visit Japan in spring"),
    ("Dating Sam", "Runs 5 km every morning"),
    ("Drives a Honda Civic", "Reads mostly science fiction"),
    ("Learning Spanish", "Sleeps about six hours a night"),
    ("Favourite editor is Vim", "Birthday is on May 3"),
    ("Studies medicine in Leipzig", "Prefers window seats on flights"),
    ("Has two cats", "Works remotely from home"),
    ("Married to Chris", "Owns a flat in Munich"),
    ("Trains for a marathon", "Uses VS Code for everything now"),
    ("Allergic to peanuts", "Booked flights to Tokyo for April"),
    ("Plays guitar in a band", "Switched to green tea"),
    ("Prefers pytest over unittest", "Pixel died last week"),
    ("Likes aisle seats these days", "Started a new job at Anthropic"),
    ("Goes to the office three days a week now", "Adopted a third cat"),
    ("Has been reading history books lately", "The team upgraded to Python 3.12"),
    ("Sold the car and bikes to work now", "Divorced from Chris last year"),
    ("Moved to Lisbon last month", "Finished the Berlin marathon in 4 hours"),
    ("Started eating fish again", "Gave up Spanish, learning Japanese instead"),
    ("Left the band to focus on work", "Now goes to bed early and sleeps eight hours"),
    ("Graduated and works as a doctor in Dresden", "Likes aisle seats these days"),
]
FLOORS = [0.15, 0.2, 0.22, 0.25, 0.28, 0.3, 0.35, 0.4]


def cosines(embed: object, pairs: list[tuple[str, str]]) -> np.ndarray:
    vectors = embed.embed([t for pair in pairs for t in pair])  # type: ignore[attr-defined]
    return np.einsum("ij,ij->i", vectors[0::2], vectors[1::2])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "related_floor.json")
    args = parser.parse_args()
    from mem0_mcp.config import Settings
    from mem0_mcp.embedding import build_embedder

    with tempfile.TemporaryDirectory() as tmp:
        embed = build_embedder(Settings(data_dir=Path(tmp)))
        same, different = cosines(embed, SAME_THING), cosines(embed, DIFFERENT)
    rows = []
    print(f"{'floor':>6} {'same thing listed':>18} {'different kept out':>19}")
    for floor in FLOORS:
        listed = float(np.mean(same >= floor))
        kept_out = float(np.mean(different < floor))
        rows.append({"floor": floor, "same_thing_listed": listed, "different_kept_out": kept_out})
        print(f"{floor:>6.2f} {100 * listed:>17.0f}% {100 * kept_out:>18.0f}%")
    result = {
        "model": embed.name,
        "pairs": {"same_thing": len(SAME_THING), "different": len(DIFFERENT)},
        "cosine": {
            "same_thing": {"min": float(same.min()), "median": float(np.median(same))},
            "different": {"max": float(different.max()), "median": float(np.median(different))},
        },
        "floors": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"same-thing cosine min {same.min():.3f} median {np.median(same):.3f}; "
        f"different max {different.max():.3f} median {np.median(different):.3f}"
    )


if __name__ == "__main__":
    main()
