from wbc.info import CELL_TYPES, CLASS_INDEX, CLASSES, NUM_CLASSES, cell_type


class TestInfo:
    def test_class_order_is_fixed(self) -> None:
        """Model outputs are indexed in this order; changing it breaks every shipped model."""
        assert CLASSES == ("EOSINOPHIL", "LYMPHOCYTE", "MONOCYTE", "NEUTROPHIL")
        assert NUM_CLASSES == 4
        assert [CLASS_INDEX[c] for c in CLASSES] == [0, 1, 2, 3]

    def test_every_type_is_described(self) -> None:
        """Each class carries the text the app shows and a plausible adult reference range."""
        for t in CELL_TYPES:
            assert t.summary and t.immunity and t.morphology and t.high_count and t.low_count
            lo, hi = t.normal_range_pct
            assert 0 <= lo < hi <= 100
        # A differential cannot show eosinopenia: many healthy adults have no eosinophil in 100 cells.
        assert cell_type("EOSINOPHIL").normal_range_pct[0] == 0
        assert sum(t.normal_range_pct[0] for t in CELL_TYPES) < 100 < sum(t.normal_range_pct[1] for t in CELL_TYPES)

    def test_lookup(self) -> None:
        """cell_type finds a class by its folder name."""
        assert cell_type("MONOCYTE").label == "Monocyte"
