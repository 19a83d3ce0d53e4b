"""The one source of truth for the classes, their biology and the data set's facts.

The trainer, evaluator, CLI and app all read `CLASSES` and `CELL_TYPES`; the class index
order here is the order of every model output.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellType:
    """One white blood cell type as a user of the app should meet it."""

    name: str  # folder name in the data set, upper case
    label: str  # how people write it
    summary: str
    immunity: str
    morphology: str
    # Share of white cells in adult peripheral blood (%). Ranges vary by laboratory and source; these are one
    # source's, Davis's Lab and Diagnostic Tests (11 years to older adults).
    # Eosinophils' starts at zero, as Henry's does (0-0.45 x 10^9/L): many healthy adults show none in 100 cells,
    # so a differential cannot show eosinopenia.
    normal_range_pct: tuple[float, float]
    high_count: str
    low_count: str


CELL_TYPES: tuple[CellType, ...] = (
    CellType(
        name="EOSINOPHIL",
        label="Eosinophil",
        summary="A granulocyte whose large granules stain orange-red with eosin.",
        immunity=(
            "Fights multicellular parasites such as helminths and takes part in allergic "
            "reactions and asthma, releasing toxic granule proteins and inflammatory mediators."
        ),
        morphology=(
            "About 12-17 µm; usually a bilobed nucleus; cytoplasm packed with coarse, "
            "uniform, orange-red granules."
        ),
        normal_range_pct=(0.0, 5.5),
        high_count=(
            "Eosinophilia: allergy, asthma, parasitic infection, some drug reactions, "
            "rarely a myeloproliferative disorder."
        ),
        low_count=("Eosinopenia: acute stress or infection, corticosteroids, Cushing's syndrome; a differential "
                   "cannot show it, since many healthy adults have none in 100 cells."),
    ),
    CellType(
        name="LYMPHOCYTE",
        label="Lymphocyte",
        summary="B and T cells, the cells of adaptive immunity, and natural killer cells of innate immunity.",
        immunity=(
            "B cells mature into the plasma cells that make antibodies, T cells kill infected cells and direct the immune "
            "response, NK cells destroy virus-infected and tumour cells; memory lymphocytes "
            "give lasting immunity."
        ),
        morphology=(
            "Most are small (7-10 µm), with a round, dense, dark nucleus that fills most of the cell "
            "and a thin rim of pale blue cytoplasm; large lymphocytes (about 10-15 µm) have more cytoplasm, some "
            "with a few red-purple (azurophilic) granules."
        ),
        normal_range_pct=(12.0, 44.0),
        high_count=(
            "Lymphocytosis: viral infections (e.g. mononucleosis), pertussis, chronic "
            "lymphocytic leukaemia."
        ),
        low_count=(
            "Lymphopenia: HIV, corticosteroids or chemotherapy, acute stress, some "
            "autoimmune and inherited immunodeficiencies."
        ),
    ),
    CellType(
        name="MONOCYTE",
        label="Monocyte",
        summary="The largest white cell; it leaves the blood to become a macrophage or dendritic cell.",
        immunity=(
            "Engulfs microbes and dead cells, presents antigens to lymphocytes and releases "
            "cytokines that drive inflammation and repair."
        ),
        morphology=(
            "Large (12-20 µm); kidney-shaped or folded nucleus with lacy chromatin; abundant "
            "grey-blue cytoplasm, often with fine granules and vacuoles."
        ),
        normal_range_pct=(4.0, 9.0),
        high_count=(
            "Monocytosis: chronic infection (e.g. tuberculosis), recovery from acute "
            "infection, autoimmune disease, chronic myelomonocytic leukaemia."
        ),
        low_count="Monocytopenia: bone marrow failure, hairy cell leukaemia, corticosteroids.",
    ),
    CellType(
        name="NEUTROPHIL",
        label="Neutrophil",
        summary="The most common white cell in adults and the first responder to bacterial infection.",
        immunity=(
            "Migrates to sites of infection within hours, engulfs and kills bacteria and "
            "fungi, and releases neutrophil extracellular traps; the main cell of pus."
        ),
        morphology=(
            "About 10-15 µm; nucleus of 2-5 lobes (most often 3) joined by thin strands; pale pink "
            "cytoplasm with fine, faint granules. Band forms, whose nucleus is a C- or S-shaped band of "
            "even width with no thin strand between lobes, are counted here as neutrophils."
        ),
        normal_range_pct=(40.0, 75.0),
        high_count=(
            "Neutrophilia: bacterial infection, inflammation, tissue damage, stress, "
            "corticosteroids, chronic myeloid leukaemia."
        ),
        low_count=(
            "Neutropenia: chemotherapy and some other drugs (e.g. clozapine, carbimazole), some viral "
            "infections, severe sepsis, B12 or folate deficiency, autoimmune disease, bone marrow disorders; "
            "a severe one (below 0.5 x 10^9/L) raises the risk of serious infection. Healthy people of the "
            "Duffy-null type (common with African or Middle-Eastern ancestry) normally have lower counts "
            "(Duffy-null associated neutrophil count, formerly 'benign ethnic neutropenia')."
        ),
    ),
)

CLASSES: tuple[str, ...] = tuple(c.name for c in CELL_TYPES)
NUM_CLASSES = len(CLASSES)
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

SPLITS: tuple[str, ...] = ("TRAIN", "TEST", "TEST_SIMPLE")
# .jfif and .jpe are JPEGs by other names (Windows saves many photos as .jfif).
IMAGE_SUFFIXES: frozenset[str] = frozenset({".jpeg", ".jpg", ".jpe", ".jfif", ".png", ".bmp", ".tif", ".tiff", ".webp",
                                            ".gif"})

# Facts of paultimothymooney/blood-cells (see the data set's README): checked by the tests.
# A model card's data source when what it was trained on is not (wholly) the public data set.
OWN_IMAGES = "own images (not the public data set)"

DATASET = {
    "kaggle_handle": "paultimothymooney/blood-cells",
    "licence": "MIT (BCCD)",
    # Distinct original fields (`wbc.sources`): the README's 277 and 71 cells less the photographs
    # that show a field another one shows too; two of TEST's fields are also in TRAIN.
    "distinct_cells": {"TRAIN": 261, "TEST": 68},
    "fields_in_train_and_test": ("EOSINOPHIL/BloodImage_00204", "NEUTROPHIL/BloodImage_00230"),
    "reference_test_accuracy": 0.8601,
}


def cell_type(name: str) -> CellType:
    """Return the description of class `name` (upper case, as in `CLASSES`)."""
    return CELL_TYPES[CLASS_INDEX[name]]
