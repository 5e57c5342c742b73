"""Synthetic form data shared by the tests and the benchmarks (never real patient data)."""

from __future__ import annotations

NO_RED_FLAGS: dict[str, bool] = dict.fromkeys(
    [
        "urinary_retention_or_incontinence",
        "saddle_anesthesia",
        "bilateral_leg_weakness",
        "progressive_motor_deficit",
        "history_of_cancer",
        "unexplained_weight_loss",
        "new_onset_pain",
        "fever",
        "iv_drug_use",
        "immunosuppression",
        "significant_trauma",
        "osteoporosis",
        "prolonged_corticosteroids",
    ],
    False,
)

GOOD_PLAN: dict[str, bool] = {
    "nsaids": True,
    "muscle_relaxant": False,
    "opioid_short_course": False,
    "activity_advice": True,
    "bed_rest": False,
    "heat_cold": True,
    "education_given": True,
    "mri_ordered": False,
}
