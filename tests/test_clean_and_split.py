from rag.clean import clean_text, parse_date
from rag.sentences import split_sentence_texts


def test_web_leftovers_are_removed_but_content_stays():
    raw = (
        "Policies\n\nNov 18, 2016\n\nView this article in another language\n"
        "Korea and Central Asia met.\n\n161117_koreacentralasia_art1.jpg\n\n"
        "The forum was in Seoul.\nLeave a review\nPolitics\nFollow us on social networks\nNews Line"
    )
    cleaned = clean_text(raw)
    assert cleaned.text == "Korea and Central Asia met.\n\nThe forum was in Seoul."
    assert cleaned.date == "2016-11-18"


def test_press_contact_footer_is_dropped():
    cleaned = clean_text("Tokajew sprach in Aschgabat.\nPressekontakt:\nCOMMVISORY\nE: info@commvisory.de\nhttps://www.commvisory.de/")
    assert cleaned.text == "Tokajew sprach in Aschgabat."


def test_date_prefix_is_metadata_not_text():
    cleaned = clean_text(" date 2024-10-15 ASTANA – Central Asian states met on Oct. 14 in Ashgabat.")
    assert cleaned.date == "2024-10-15"
    assert cleaned.text.startswith("ASTANA – Central Asian states")


def test_dates_parse():
    assert parse_date("Nov 18, 2016") == "2016-11-18"
    assert parse_date("August 9, 2024") == "2024-08-09"
    assert parse_date("not a date") is None


def test_sentences_do_not_break_at_abbreviations_or_german_ordinals():
    assert split_sentence_texts("They met on Oct. 14 in Ashgabat. It ended well.") == [
        "They met on Oct. 14 in Ashgabat.", "It ended well."]
    assert split_sentence_texts("Beim Forum am 12. Dezember sprach er. Dann ging er.") == [
        "Beim Forum am 12. Dezember sprach er.", "Dann ging er."]
    assert split_sentence_texts("Die Gebühren betragen 30 Mio. GBP im Jahr. Das reicht.") == [
        "Die Gebühren betragen 30 Mio. GBP im Jahr.", "Das reicht."]
    assert split_sentence_texts("Its president is Rev. Paul T. Stallsworth. He was elected.") == [
        "Its president is Rev. Paul T. Stallsworth.", "He was elected."]
    # An abbreviation that ends a sentence: a capitalised sentence opener follows it.
    assert split_sentence_texts("Tea, coffee, etc. The rest is water.") == ["Tea, coffee, etc.", "The rest is water."]
    assert split_sentence_texts("Er starb 44 v. Chr. Danach kam Augustus.") == [
        "Er starb 44 v. Chr.", "Danach kam Augustus."]
    # … but not one that only introduces what follows.
    assert split_sentence_texts("Newspapers, e.g. The Times and The Guardian, reported it.") == [
        "Newspapers, e.g. The Times and The Guardian, reported it."]
    assert split_sentence_texts("Das berichtete z.B. Die Zeit im Mai.") == ["Das berichtete z.B. Die Zeit im Mai."]
