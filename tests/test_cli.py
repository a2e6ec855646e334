"""The `a3lign` command line: help, info, synth, train/eval, folds, clear errors (CPU).

Most tests call the entry point in this process (`run_cli`: `cli.main`, the same code the console script runs, without
a fresh torch import per command); `test_console_script_installed` starts the installed script for real (exit codes,
one-line errors from a real process)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_clips, run_cli as run


def test_help_and_info():
    out = run('--help').stdout
    for cmd in ('info', 'synth', 'check', 'extract', 'train', 'eval', 'folds', 'ablate', 'demo'): assert cmd in out
    assert '--batch-size' in run('train', '--help').stdout
    info = run('info').stdout
    for k in ('torch:', 'open_clip:', 'nbdev:', 'decord:', 'av:', 'a3lign-tiny', 'A3LIGN_CLIP_WEIGHTS', 'devices: cpu'):
        assert k in info, k


def test_console_script_installed(tmp_path):
    "The installed `a3lign` in a process of its own: a clear error is exit code 2 and one line, no traceback."
    exe = Path(sys.executable).parent/'a3lign'
    if not exe.exists(): pytest.skip('console script not installed (pip install -e .)')
    p = subprocess.run([str(exe), 'train', '--data-root', '/no/such/dir'], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    err = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode == 2 and err == ['a3lign train: error: data root /no/such/dir does not exist (--data-root). It should be '
                                         'the folder the paths in the annotation lists are relative to.'], p.stderr
    assert run('train', '--no-such-option', check=False).returncode == 2   # argparse's exit code, in process


def test_clear_errors(tmp_path):
    p = run('train', '--data-root', '/no/such/dir', check=False)
    assert p.returncode == 2 and 'data root /no/such/dir does not exist' in p.stderr and 'Traceback' not in p.stderr
    p = run('eval', tmp_path, check=False)
    assert p.returncode == 2 and 'not a run folder' in p.stderr
    p = run('folds', '--dataset', 'synthetic', check=False)
    assert p.returncode == 2 and 'single split' in p.stderr
    p = run('train', '--clip', 'ViT-B-16-quickgelu', '--pretrained', 'openai', '--dataset', 'nosuch', check=False)
    assert p.returncode == 2 and 'unknown dataset' in p.stderr


def test_synth_train_eval(tmp_path):
    run('synth', tmp_path/'syn', '--train-per-class', 2, '--test-per-class', 1, '--size', 32, '--min-frames', 12,
        '--max-frames', 16, '--no-progress')
    assert len((tmp_path/'syn'/'train.txt').read_text().splitlines()) == 14
    common = ['--train-list', tmp_path/'syn'/'train.txt', '--test-list', tmp_path/'syn'/'test.txt', '--backbone', 'a3lign-tiny',
              '--pretrained', 'none', '--text-epochs', 1, '--image-epochs', 1, '--joint-epochs', 1, '--batch-size', 4,
              '--device', 'cpu', '--no-progress', '--model', 'num_sentences=2', '--model', 'tokens_per_sentence=4']
    run('extract', *common, '--out-dir', tmp_path/'runs'/'a')
    out = run('train', *common, '--out-dir', tmp_path/'runs'/'a').stdout
    assert 'UAR' in out and 'WAR' in out
    ev = json.loads((tmp_path/'runs'/'a'/'eval.json').read_text())
    assert set(ev) >= {'war', 'uar', 'per_class_recall', 'confusion', 'classes'} and len(ev['classes']) == 7
    assert ev['protocol'] == 'tsn' and ev['epoch'] == 3  # the synthetic set keeps its protocol; the result is the last epoch
    assert 1 <= ev['best_test_epoch']['epoch'] <= 3 and 'optimistic' in ev['best_test_epoch']['note']
    assert (tmp_path/'runs'/'a'/'curves.html').exists() and (tmp_path/'runs'/'a'/'confusion.html').exists()
    assert len((tmp_path/'runs'/'a'/'log.jsonl').read_text().splitlines()) == 3
    conf = json.loads((tmp_path/'runs'/'a'/'config.json').read_text())
    assert conf['train']['model']['num_sentences'] == 2 and conf['train']['batch_size'] == 4 and conf['train']['version'] == 2
    out = run('eval', tmp_path/'runs'/'a', '--device', 'cpu', '--out', tmp_path/'e.json', '--no-progress').stdout
    assert f"UAR {100*ev['uar']:.2f}%" in out


def test_folds(tmp_path):
    data = make_clips(tmp_path/'d', n_per_class=2)
    for k in (1, 2):  # two "folds": the same clips in another order
        for s in ('train', 'test'):
            lines = (data/f'{s}.txt').read_text().splitlines()
            (data/f'{s}_{k}.txt').write_text('\n'.join(lines[::-1] if k == 2 else lines) + '\n')
    run('folds', '--train-list', str(data/'train_{fold}.txt'), '--test-list', str(data/'test_{fold}.txt'), '--folds', '1,2',
        '--backbone', 'a3lign-tiny', '--pretrained', 'none', '--text-epochs', 1, '--image-epochs', 1, '--joint-epochs', 1,
        '--batch-size', 2, '--device', 'cpu', '--no-progress', '--out-dir', tmp_path/'f', '--max-frames', 16,
        '--model', 'num_sentences=2', '--model', 'tokens_per_sentence=4', '--backbone-precision', 'bf16')
    s = json.loads((tmp_path/'f'/'folds.json').read_text())
    # the shared cache was built with the run's bf16 tower (before the fix: fp32, and every fold refused it)
    cache = next((tmp_path/'f'/'cache').iterdir())
    assert json.loads((cache/'manifest.json').read_text())['key']['model']['weights_dtype'] == 'bfloat16'
    assert s['best_test_uar']['n'] == 2 and 'optimistic' in s['best_test_note']
    assert s['folds'] == [1, 2] and s['uar']['n'] == 2 and 0 <= s['uar']['mean'] <= 1
    assert (tmp_path/'f'/'fold_1'/'eval.json').exists() and (tmp_path/'f'/'fold_2'/'eval.json').exists()
    assert len(list((tmp_path/'f'/'cache').iterdir())) == 1   # one cache shared by the folds


def test_ablate_writes_the_table(tmp_path):
    "`a3lign ablate` on part of the shipped time set, tiny sizes: JSON with the documented keys, markdown, clear errors."
    from a3lign_nb.utils import REPO_SAMPLES
    if REPO_SAMPLES is None: pytest.skip('the shipped samples are not here (not a source checkout)')
    src = REPO_SAMPLES/'synthetic_time'
    lists = {}
    for split, per_class in (('train', (12, 8, 6, 4, 4, 3)), ('test', (8, 5, 3, 2, 2, 1))):  # imbalanced, as shipped
        lines = [l.split() for l in (src/f'{split}.txt').read_text().splitlines() if l.strip()]
        keep = [l for c, k in enumerate(per_class) for l in [x for x in lines if int(x[2]) == c][:k]]
        lists[split] = tmp_path/f'{split}.txt'
        lists[split].write_text(''.join(f'{(src/l[0]).resolve()} {l[1]} {l[2]}\n' for l in keep))
    out = tmp_path/'res'/'synthetic-time'
    p = run('ablate', '--set', 'synthetic-time', '--train-list', lists['train'], '--test-list', lists['test'],
            '--seeds', '0', '1', '--epochs', '1', '2', '1',
            '--methods', 'zero-shot', 'linear-probe', 'a3lign', 'a3lign-shuffled',
            '--model', 'num_sentences=2', '--model', 'tokens_per_sentence=4', '--out', out)
    res = json.loads(out.with_suffix('.json').read_text())
    assert list(res) == ['zero-shot', 'linear-probe', 'a3lign', 'a3lign-shuffled']
    for m, r in res.items():
        assert {'uar_mean', 'uar_std', 'war_mean', 'war_std', 'seeds', 'seconds'} <= set(r), m
        assert 0 <= r['uar_mean'] <= 1 and 0 <= r['war_mean'] <= 1
    assert res['a3lign']['seeds'] == [0, 1] and res['zero-shot']['seeds'] == [0]
    assert res['a3lign']['uar_mean'] != res['a3lign']['war_mean']  # imbalanced test set: UAR and WAR differ
    md = out.with_suffix('.md').read_text()
    assert '| `a3lign-shuffled` |' in md and 'a3lign ablate --set synthetic-time' in md
    assert '| `a3lign` |' in p.stdout
    bad = run('ablate', '--set', 'dfew', check=False)
    assert bad.returncode == 2 and 'not a shipped set' in bad.stderr and 'Traceback' not in bad.stderr
    # the study (issue 21): runs kept one file each; collecting them again trains nothing and gives the same table
    runs = tmp_path/'runs'
    tiny = ['--set', 'synthetic-time', '--train-list', lists['train'], '--test-list', lists['test'], '--study', 'jas',
            '--seeds', '0', '--epochs', '1', '1', '1', '--model', 'num_sentences=2', '--model', 'tokens_per_sentence=4', '--runs-dir', runs]
    run('ablate', *tiny, '--out', tmp_path/'st')
    st = json.loads((tmp_path/'st.json').read_text())
    assert list(st['jas']) == ['encoders', 'no-encoders', 'own-tables', 'align'] and len(list(runs.glob('*.json'))) == 4
    assert {'uar_mean', 'uar_shuffled_mean', 'alignment_mean', 'runs'} <= set(st['jas']['align'])
    run('ablate', *tiny, '--collect', '--out', tmp_path/'st2')
    assert json.loads((tmp_path/'st2.json').read_text()) == st and '### JAS' in (tmp_path/'st2.md').read_text()
    bad = run('ablate', '--study', 'jas', '--collect', check=False)
    assert bad.returncode == 2 and '--collect needs --runs-dir' in bad.stderr and 'Traceback' not in bad.stderr


def _check_tree(root: Path) -> Path:
    "Frame folders with one planted fault each, and a list naming them."
    from PIL import Image
    for name, n in (('good', 20), ('short', 12), ('broken', 20), ('label', 20)):
        d = root/'clips'/name; d.mkdir(parents=True)
        for i in range(1, n + 1): Image.new('RGB', (8, 8), (i, 0, 0)).save(d/f'{i:03d}.jpg')
    (root/'clips'/'broken'/'020.jpg').write_bytes(b'not a jpeg')  # the last frame does not decode
    lst = root/'list.txt'
    lst.write_text('clips/good 20 0\nclips/missing 20 1\nclips/short 20 2\nclips/broken 20 3\nclips/label 20 9\n')
    return lst


def test_check_finds_planted_faults(tmp_path):
    lst = _check_tree(tmp_path)
    p = run('check', lst, '--dataset', 'dfew', '--fix', tmp_path/'fixed.txt', check=False)
    assert p.returncode == 1, p.stdout + p.stderr
    out = p.stdout
    assert '5 lines, 2 usable' in out and '1 label, 1 missing, 1 count, 1 unreadable' in out
    for line, what in ((2, 'clips/missing not found'), (3, 'has 12 frames, the list says 20'), (4, 'frame 19 of'),
                       (5, 'label 9 is outside 0..6')):
        assert f'list.txt:{line}:' in out and what in out, (line, what, out)
    assert (tmp_path/'fixed.txt').read_text() == 'clips/good 20 0\nclips/short 12 2\n'
    assert run('check', tmp_path/'fixed.txt', '--dataset', 'dfew').returncode == 0


def test_check_path_map(tmp_path):
    _check_tree(tmp_path)
    peer = tmp_path/'peer.txt'
    peer.write_text('/home/peer/DFEW/clips/good 20 0\n/home/peer/DFEW/clips/short 12 2\n')
    p = run('check', peer, '--data-root', tmp_path, '--dataset', 'dfew', check=False)
    assert p.returncode == 1 and 'peer.txt:1:' in p.stdout and f'--path-map /home/peer/DFEW={tmp_path.as_posix()}' in p.stdout
    p = run('check', peer, '--data-root', tmp_path, '--dataset', 'dfew', '--path-map', f'/home/peer/DFEW={tmp_path}',
            '--fix', tmp_path/'mine.txt')
    assert 'no problems' in p.stdout
    assert (tmp_path/'mine.txt').read_text() == 'clips/good 20 0\nclips/short 12 2\n'  # relative to the data root


def test_every_option_has_help():
    "Every option of every command says what it means in --help."
    import argparse
    from a3lign_nb.cli import build_parser
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = {name: [a.option_strings or a.dest for a in p._actions if not a.help and a.dest != 'help']
               for name, p in sub.choices.items()}
    assert not any(missing.values()), missing
    assert {'--lr', '--grad-clip', '--num-segments', '--protocol'} <= {o for a in sub.choices['train']._actions for o in a.option_strings}
