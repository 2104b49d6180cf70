import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomicllm_kernel import checks
from genomicllm_kernel.errors import InputError
from genomicllm_kernel.grammar import format_prompt, make_prompt, parse_prompt
from genomicllm_kernel.registry import TASKS, all_question_keys
from genomicllm_kernel.codec import HybridCodec
from genomicllm_kernel.tokenizer import GenomicLLMTokenizer, learn_text_pieces

TOK = GenomicLLMTokenizer(text_pieces=learn_text_pieces(["BRCA1 DNA repair associated"] * 5 + ["symbol = X"] * 5))
AFTER = GenomicLLMTokenizer(text_pieces=learn_text_pieces(["BRCA1 DNA repair associated"] * 5 + ["symbol = X"] * 5), item_marker="after_name")
dna = st.text(alphabet="ACGTN", min_size=1, max_size=120)
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters=",="), min_size=1, max_size=30).map(str.strip).filter(bool)


@settings(max_examples=200)
@given(
    dna,
    st.sampled_from([k for k in all_question_keys() if not k.endswith(":")]),
    st.dictionaries(st.from_regex(r"[a-z][a-z ]{0,8}[a-z]", fullmatch=True), text, max_size=2),
)
def test_prompt_round_trip(sequence, question, items):
    prompt = make_prompt(question, sequence, items)
    for tok in (TOK, AFTER):
        ids = tok.encode_prompt(prompt)
        assert ids[0] == tok.bos_token_id and tok.unk_token_id not in ids
        assert tok.decode(ids) == format_prompt(prompt)
        assert parse_prompt(tok.decode(ids)) == prompt


@given(dna)
def test_dna_answers_are_aligned_and_exact(sequence):
    for question, fn in (
        ("reverse sequence", checks.reverse),
        ("complementary sequence", checks.complement),
        ("reverse complementary sequence", checks.reverse_complement),
    ):
        prompt = make_prompt(question, sequence)
        answer = fn(sequence)
        ids = TOK.encode_answer(prompt, answer)
        assert len(ids) == (len(sequence) + 2) // 3 + 1  # one token per input chunk, then <eos>
        assert TOK.decode_answer(prompt, ids) == answer


@given(dna, text)
def test_protein_text_and_number_answers(sequence, free_text):
    p = make_prompt("protein sequence", sequence)
    protein = checks.translate(sequence)
    assert TOK.decode_answer(p, TOK.encode_answer(p, protein)) == protein
    d = make_prompt("description", None, {"symbol": "X"})
    assert TOK.decode_answer(d, TOK.encode_answer(d, free_text)) == free_text
    g = make_prompt("GC content", sequence)
    gc = checks.gc_content(sequence)
    assert TOK.decode_answer(g, TOK.encode_answer(g, gc)) == gc


def test_labels_are_single_tokens():
    for task in TASKS.values():
        if task.labels:
            p = make_prompt(task.default_question, "ACGT" if task.needs_sequence else None)
            for label in task.labels:
                ids = TOK.encode_answer(p, label)
                assert len(ids) == 2 and TOK.decode_answer(p, ids) == label


def test_three_mers_cut_tokens():
    assert len(TOK.encode_prompt("ACGTACGTACGT, GC content =")) == 1 + 4 + 1 + 1 + 1


def test_save_and_load(tmp_path):
    TOK.save_pretrained(tmp_path)
    again = GenomicLLMTokenizer.from_pretrained(tmp_path)
    prompt = "ACGTTGCAN, symbol = BRCA1, reverse sequence ="
    assert again.encode_prompt(prompt) == TOK.encode_prompt(prompt)
    assert again.padding_side == "left"
    batch = again(["ACGT, GC content =", "ACGTACGTAA, promoter ="], padding=True)
    assert set(batch) == {"input_ids", "attention_mask"}


def test_aligned_answers_sit_a_constant_offset_after_their_chunk():
    from genomicllm_kernel.codec import ALIGN_OFFSET, position_ids

    prompt = make_prompt("complementary sequence", "ACGTACGTAC")
    ids, ans = TOK.encode_prompt(prompt), TOK.encode_answer(prompt, checks.complement("ACGTACGTAC"))
    pos = position_ids(len(ids), len(ans), True)
    # query predicting answer j is <ans> (j = 0) or answer token j-1; chunk j is at position 1 + j
    queries = [pos[len(ids) - 1]] + pos[len(ids) : len(ids) + len(ans) - 1]
    assert [q - (1 + j) for j, q in enumerate(queries)] == [ALIGN_OFFSET] * len(ans)
    assert position_ids(5, 2, False) == list(range(7))


@given(dna)
def test_gc_answers_are_a_per_chunk_count_scratchpad(sequence):
    from genomicllm_kernel.codec import gc_counts, model_view

    prompt = make_prompt("GC content", sequence)
    tokens = TOK.answer_tokens(prompt, checks.gc_content(sequence))
    assert len(tokens) == (len(sequence) + 2) // 3 + 1 and tokens[-1] == "<eos>"
    view = model_view(sequence)
    assert tokens[0] == "<gc:%d/%d>" % gc_counts(view[:3])
    assert TOK.is_aligned(prompt)


def test_gc_scratchpad_sums_counts_and_old_vocabularies_keep_digits():
    from genomicllm_kernel.codec import GC_TOKENS, HybridCodec

    prompt = make_prompt("GC content", "GGGATNNNN")
    ids = [TOK.vocab[t] for t in ("<gc:3/3>", "<gc:0/2>", "<gc:0/0>", "<eos>")]
    assert TOK.decode_answer(prompt, ids) == "0.600" == checks.gc_content("GGGATNNNN")
    old = HybridCodec({t: i for i, t in enumerate(t for t in TOK.vocab if t not in GC_TOKENS)})
    assert not old.gc_scratchpad and not old.is_aligned(prompt)
    assert old.answer_tokens(prompt, "0.600") == ["0", ".", "6", "0", "0", "<eos>"]
    assert old.decode_answer(prompt, old.encode_answer(prompt, "0.600")) == "0.600"


def test_reading_comprehension_points_at_the_named_item():
    prompt = parse_prompt("ACGT, symbol = BRCA1, id = 672, reading comprehension: id =")
    tokens = TOK.prompt_tokens(prompt)
    assert tokens.count("<item:1>") == 1 and tokens.count("<item:2>") == 1  # annotation items are marked
    name_in_item = tokens[tokens.index("<item:2>") + 1 : tokens.index("<item:2>") + 1 + len(TOK.text_tokens("id"))]
    assert tokens[tokens.index("<q:reading comprehension:>") + 1 : -1] == name_in_item == TOK.text_tokens("id")
    assert TOK.answer_tokens(prompt, "672") == ["<item:2>", "<eos>"]
    assert TOK.decode_answer(prompt, TOK.encode_answer(prompt, "672")) == "672"
    assert TOK.item_ids(prompt) == [TOK.vocab["<item:1>"], TOK.vocab["<item:2>"]]
    with pytest.raises(InputError, match="'999' is not the value"):
        TOK.encode_answer(prompt, "999")


def test_text_answers_keep_the_spelling_of_an_item_value():
    d = make_prompt("description", None, {"symbol": "X"})
    assert TOK.answer_tokens(d, "BRCA1 DNA repair associated")[:-1] == TOK.text_tokens(" BRCA1 DNA repair associated")


def test_vocabulary_without_item_pointers_answers_reading_comprehension_in_text():
    tok = GenomicLLMTokenizer(text_pieces=["symbol"], item_pointers=False)
    prompt = parse_prompt("symbol = BRCA1, reading comprehension: symbol =")
    assert not tok.item_pointers and not any(t.startswith("<item:") for t in tok.prompt_tokens(prompt))
    assert tok.answer_tokens(prompt, "BRCA1")[:-1] == tok.text_tokens(" BRCA1")
    assert tok.decode_answer(prompt, tok.encode_answer(prompt, "BRCA1")) == "BRCA1"


def test_item_marker_after_the_name_sits_where_the_question_ends(tmp_path):
    """after_name: the token before each marker is the item name's last token, tokenized exactly as
    the question spells it, so the question's last token before <ans> matches it one to one."""
    from genomicllm_kernel.codec import HybridCodec

    prompt = parse_prompt("ACGT, symbol = BRCA1, map location = 17q21.31, reading comprehension: map location =")
    tokens = AFTER.prompt_tokens(prompt)
    m = tokens.index("<item:2>")
    name = AFTER.text_tokens("map location")
    assert tokens[m - len(name) : m] == name == tokens[tokens.index("<q:reading comprehension:>") + 1 : -1]
    assert tokens[tokens.index("<item:1>") - 1] == AFTER.text_tokens("symbol")[-1]
    assert AFTER.answer_tokens(prompt, "17q21.31") == TOK.answer_tokens(prompt, "17q21.31") == ["<item:2>", "<eos>"]
    assert TOK.prompt_tokens(prompt)[TOK.prompt_tokens(prompt).index("<item:2>") + 1 :][: len(name)] == name
    # the layout travels with the tokenizer files, for both the transformers and the ONNX Runtime path
    AFTER.save_pretrained(tmp_path / "after")
    assert GenomicLLMTokenizer.from_pretrained(tmp_path / "after").item_marker == "after_name"
    assert HybridCodec.from_pretrained(tmp_path / "after").prompt_tokens(prompt) == tokens
    TOK.save_pretrained(tmp_path / "before")
    assert HybridCodec.from_pretrained(tmp_path / "before").item_marker == "before_name"
    (tmp_path / "before" / "tokenizer_config.json").unlink()  # folders from before the setting existed
    assert HybridCodec.from_pretrained(tmp_path / "before").prompt_tokens(prompt) == TOK.prompt_tokens(prompt)
    with pytest.raises(InputError, match="item_marker must be one of"):
        HybridCodec(TOK.vocab, "inside_value")


def test_name_keys_make_any_item_name_one_token_the_question_can_match(tmp_path):
    """With name keys the token before each <item:k> marker, and before <ans>, is the name's hashed
    key: the same for the same name whatever its case or spacing, another for a name that only
    shares a suffix or a letter with it. Every other token keeps its id, and the keys travel with the
    saved vocabulary; a vocabulary without keys encodes as before."""
    from genomicllm_kernel.codec import name_key

    keyed = GenomicLLMTokenizer(text_pieces=learn_text_pieces(["BRCA1 DNA repair associated"] * 5 + ["symbol = X"] * 5), item_marker="after_name")
    keyed.add_name_keys(64)
    assert keyed.name_keys == 64 and len(keyed) == len(AFTER) + 64
    prompt = parse_prompt("quality = 75.57, ACGT, Tissue  = liver, old tissue = brain, reading comprehension: tissue =")
    tokens = keyed.prompt_tokens(prompt)
    key = name_key("tissue", 64)
    assert tokens[-2] == key == tokens[tokens.index("<item:2>") - 1] == name_key(" TISSUE ", 64)
    assert tokens[tokens.index("<item:3>") - 1] == name_key("old tissue", 64) != key
    assert tokens[tokens.index("<item:1>") - 1] == name_key("quality", 64) != key
    assert [t for t in tokens if not t.startswith("<key:")] == AFTER.prompt_tokens(prompt)
    assert keyed.encode_prompt("ACGTACGT, core promoter =") == AFTER.encode_prompt("ACGTACGT, core promoter =")
    assert parse_prompt(keyed.decode(keyed.encode_prompt(prompt))) == prompt
    keyed.save_pretrained(tmp_path)
    assert HybridCodec.from_pretrained(tmp_path).prompt_tokens(prompt) == tokens
    assert GenomicLLMTokenizer.from_pretrained(tmp_path).name_keys == 64
    assert not any(t.startswith("<key:") for t in AFTER.prompt_tokens(prompt))
    with pytest.raises(InputError, match="already has 64 name keys"):
        keyed.codec.with_name_keys(32)


def test_the_shipped_model_folder_saves_every_setting(tmp_path):
    """Nothing is inferred from the vocabulary for the shipped model: every codec setting is read
    from tokenizer_config.json, in one place, by both loaders; a saved folder round-trips them."""
    from pathlib import Path

    from genomicllm_kernel.codec import SETTINGS

    shipped = Path(__file__).resolve().parents[1] / "models" / "default"
    for folder in (shipped, shipped / "onnx"):
        codec = HybridCodec.from_pretrained(folder)
        assert codec.inferred == [] and set(codec.settings()) == set(SETTINGS)
    hf = GenomicLLMTokenizer.from_pretrained(shipped)
    assert hf.codec.settings() == HybridCodec.from_pretrained(shipped).settings()
    tok = GenomicLLMTokenizer(text_pieces=["gene"], item_marker="after_name")
    tok.save_pretrained(tmp_path)
    saved = HybridCodec.from_pretrained(tmp_path)
    assert saved.inferred == [] and saved.settings() == tok.codec.settings() == {
        "item_marker": "after_name",
        "gc_scratchpad": True,
        "item_pointers": True,
    }


def test_ids_come_from_the_saved_vocabulary_not_the_registry_order(monkeypatch):
    """Reordering the registry's fixed vocabulary cannot shift a shipped model's token ids."""
    from pathlib import Path

    from genomicllm_kernel import codec as codec_module

    shipped = Path(__file__).resolve().parents[1] / "models" / "default"
    before = HybridCodec.from_pretrained(shipped).encode_prompt("ACGTTGCA, GC content =")
    original = codec_module.base_vocabulary
    monkeypatch.setattr(codec_module, "base_vocabulary", lambda: list(reversed(original())))
    assert HybridCodec.from_pretrained(shipped).encode_prompt("ACGTTGCA, GC content =") == before
