"""What each action unit does to the face mesh, as data: FACS regions, motion handles and their provenance.

Two field sets share these tables. `mixed` keeps py-feat's fitted fields where they are right (cut to the AU's
FACS region) and uses our own definitions where py-feat is wrong or negligible (shared/notes/au-to-mesh.md §3).
`own` uses our own definition for every AU, on MediaPipe's canonical mesh, so no py-feat bytes are involved.

An own definition lists handles: MediaPipe vertex groups on the subject's right (image left) and their motion
(du > 0 toward image right, i.e. toward the midline on this side; dv > 0 down), mirrored to the other side. It also
lists anchors that stay still, a blend radius sigma and, for lip AUs, the side of the lip line that may move.
All lengths are in outer-eye-corner distances (IOD).
"""

from __future__ import annotations

# Named vertex groups on the subject's right (image left).
BROW_OUTER = (70, 46, 63, 53)
BROW_MID = (105, 52)
BROW_INNER = (66, 65, 107, 55)
LID_UPPER = (246, 161, 160, 159, 158, 157, 173)
LID_LOWER = (7, 163, 144, 145, 153, 154, 155)
LID_CREASE = (247, 30, 29, 27, 28, 56, 190)
UNDER_LID = (25, 110, 24, 23, 22, 26, 112)
EYE_CORNERS = (33, 133)
LIP_UPPER_OUTER = (185, 40, 39, 37, 0)
LIP_UPPER_INNER = (191, 80, 81, 82, 13)
LIP_LOWER_INNER = (95, 88, 178, 87, 14)
LIP_LOWER_OUTER = (146, 91, 181, 84, 17)
MOUTH_CORNERS = (61, 78)
CHIN = (152, 175, 199, 200, 18)
CHEEK = (205, 50, 101, 36, 118)
ALA = (48, 64, 98, 129, 102, 219, 235, 240)

# Aperture pairs (upper, lower) for both eyes and the inner lips: warps must never push them through each other.
EYE_PAIRS = ((161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (246, 7), (173, 155),
             (388, 390), (387, 373), (386, 374), (385, 380), (384, 381), (466, 249), (398, 382))
LIP_PAIRS = ((191, 95), (80, 88), (81, 178), (82, 87), (13, 14), (312, 317), (311, 402), (310, 318), (415, 324))
BLINK_PAIRS = ((159, 145), (386, 374))  # mid upper and lower lid of each eye

# py-feat AUs kept in the mixed set, each cut to its FACS region: (|u| range, v range, soft edge).
PYFEAT_REGIONS: dict[str, tuple[tuple[float, float], tuple[float, float], float]] = {
    "AU01": ((0.0, 0.78), (-0.8, -0.12), 0.05),
    "AU04": ((0.0, 0.78), (-0.8, -0.10), 0.05),
    "AU05": ((0.12, 0.62), (-0.10, 0.0), 0.03),
    "AU06": ((0.25, 0.80), (-0.02, 0.35), 0.06),
    "AU07": ((0.12, 0.62), (-0.08, 0.12), 0.04),
    "AU12": ((0.0, 0.80), (0.42, 1.0), 0.08),
    "AU17": ((0.0, 0.60), (0.62, 1.25), 0.06),
    "AU43": ((0.12, 0.62), (-0.12, 0.06), 0.04),
}

Handle = tuple[tuple[int, ...], tuple[float, float]]
OwnField = tuple[tuple[Handle, ...], tuple[int, ...], float, str]  # handles, anchors, sigma, lip side

OWN_FIELDS: dict[str, OwnField] = {
    "AU01": (((BROW_INNER, (0.0, -1.0)), (BROW_MID, (0.0, -0.5)), ((108, 69), (0.0, -0.6)), ((9,), (0.0, -0.5)),
              (BROW_OUTER, (0.0, -0.15))),
             (*LID_UPPER, *EYE_CORNERS, 168, 6), 0.06, ""),
    "AU02": (((BROW_OUTER, (0.0, -1.0)), (BROW_MID, (0.0, -0.6)), ((66, 65), (0.0, -0.2)), ((71, 68), (0.0, -0.7))),
             (107, 55, 9, 8, 168, *LID_UPPER, *EYE_CORNERS), 0.06, ""),
    "AU04": ((((107, 55, 66, 65), (0.35, 0.9)), (BROW_MID, (0.15, 0.8)), (BROW_OUTER, (0.0, 0.5)),
              ((9, 8), (0.0, 0.3))),
             (*LID_UPPER, *EYE_CORNERS, 6, 197), 0.06, ""),
    "AU05": (((LID_UPPER, (0.0, -1.0)), (LID_CREASE, (0.0, -0.6))),
             (*LID_LOWER, *EYE_CORNERS, *BROW_OUTER, *BROW_MID, *BROW_INNER), 0.04, ""),
    "AU06": (((CHEEK, (0.1, -0.8)), (UNDER_LID, (0.05, -0.7)), ((145, 144, 153, 163, 154), (0.0, -0.45)),
              ((130, 226, 113, 225), (0.3, -0.3))),
             (*LID_UPPER, 1, 4, 5, 195, *MOUTH_CORNERS, *LIP_UPPER_OUTER), 0.06, ""),
    "AU07": (((LID_LOWER, (0.05, -1.0)), (UNDER_LID, (0.0, -0.6)), (LID_UPPER, (0.0, 0.2))),
             (*BROW_OUTER, *BROW_MID, *BROW_INNER, *CHEEK, 6, 197), 0.035, ""),
    "AU09": ((((188, 174, 196, 3, 236, 217, 198), (0.15, -0.9)), (ALA, (0.1, -0.6)),
              ((0, 37, 39, 13, 82, 81), (0.0, -0.35)), ((101, 36, 118, 119, 120, 47, 100), (0.0, -0.35)),
              ((107, 55, 65, 193, 8), (0.1, 0.45)), ((145, 144, 153, 23, 24, 22), (0.0, -0.2))),
             (*CHIN, 151, 9, 159, 160, 158, *BROW_OUTER), 0.05, "upper"),
    "AU10": (((LIP_UPPER_OUTER, (0.0, -1.0)), (LIP_UPPER_INNER, (0.0, -0.9)), (MOUTH_CORNERS, (0.0, -0.35)),
              ((164, 167, 165, 92), (0.0, -0.5)), (ALA, (0.0, -0.3)), ((203, 206, 216), (0.0, -0.3))),
             (1, 4, 5, *LID_LOWER, 205, 50, 36), 0.05, "upper"),
    "AU12": (((MOUTH_CORNERS, (-0.7, -0.7)), ((185, 146, 191, 95), (-0.45, -0.45)), ((40, 39, 80, 81), (-0.15, -0.3)),
              ((206, 216, 207, 187, 92, 186, 57, 212, 214), (-0.3, -0.45)), ((205, 50, 36, 101), (-0.05, -0.25)),
              ((91, 181, 88, 178), (-0.2, -0.15)), ((0, 13), (0.0, -0.25)), ((14, 17), (0.0, -0.1))),
             (1, 4, 5, 2, *LID_LOWER, 175, 199, 200), 0.06, ""),
    "AU14": (((MOUTH_CORNERS, (0.8, -0.3)), ((185, 146, 191, 95), (0.45, -0.15)),
              ((57, 186, 212, 202, 43), (0.3, -0.1))),
             (0, 13, 14, 17, 37, 84, 2, 164, 152, 199, 205, 50, 36, 203), 0.05, ""),
    "AU15": (((MOUTH_CORNERS, (-0.2, 1.0)), ((146, 95, 91, 88), (-0.1, 0.6)), ((185, 191), (-0.1, 0.6)),
              ((57, 43, 106, 204, 202, 212), (-0.05, 0.55)), ((32, 194, 211), (0.0, 0.25))),
             (0, 13, 14, 17, 37, 82, 87, 84, 2, 164, 1, 203, 206, 205), 0.05, ""),
    "AU17": ((((175, 199, 200, 18, 83, 201, 208, 171), (0.0, -1.0)), (LIP_LOWER_OUTER, (0.1, -0.9)),
              (LIP_LOWER_INNER, (0.05, -0.8)), ((*LIP_UPPER_OUTER, *LIP_UPPER_INNER), (0.0, -0.35)),
              (MOUTH_CORNERS, (0.15, -0.3))),
             (1, 2, 4, 205, 50, 36, 172, 136), 0.07, ""),
    "AU43": (((LID_UPPER, (0.0, 1.0)), (LID_CREASE, (0.0, 0.5))),
             (*LID_LOWER, *EYE_CORNERS, *BROW_OUTER, *BROW_MID, *BROW_INNER), 0.035, ""),
}

# Why each py-feat field was kept or replaced in the mixed set (the model card's provenance table).
MIXED_NOTES: dict[str, str] = {
    "AU01": "inner brow raiser; py-feat field cut to the brow and forehead band",
    "AU02": "outer brow raiser; py-feat raises the inner brow instead (outer +0.6 u): own",
    "AU04": "brow lowerer; py-feat field cut to the brow and forehead band",
    "AU05": "upper lid raiser; py-feat field cut to the eye (its brow raise is AU1+2 leakage)",
    "AU06": "cheek raiser; py-feat field cut to the cheeks and lower lids (its smile is AU12 leakage)",
    "AU07": "lid tightener; py-feat field cut to the eye",
    "AU09": "nose wrinkler; py-feat's is weak locally and moves the face outline 25 u: own",
    "AU10": "upper lip raiser; py-feat raises the upper lip 0.4 u and drops the lower lip: own",
    "AU12": "lip corner puller; py-feat field cut to the lower face",
    "AU14": "dimpler; py-feat's lifts the corners 6.8 u and the chin 9 u (a smile, not a dimpler): own",
    "AU15": "lip corner depressor; py-feat lowers the corners only 1.3 u and moves the outline 16 u: own",
    "AU17": "chin raiser; py-feat field cut to the chin and lips",
    "AU43": "eyes closed (blinks); py-feat field cut to the eye",
}
