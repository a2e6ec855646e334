"""Your own video in: `a3lign prepare` -> `check` -> `extract` -> `train` -> `eval` -> `export` -> `predict`, end to end
through the command line (in process, `run_cli`), on synthetic face clips and on the real face video (carphone); and
the bad input each command meets: empty files, text named .mp4, videos without a face, unreadable folders, model
folders with missing or pickled weights. Tiny configs throughout (CPU, well under a minute for the file)."""
from __future__ import annotations

import json
import os
import re
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from a3lign_nb.data.synth import write_video
from conftest import run_cli

TINY = ['--backbone', 'a3lign-tiny', '--pretrained', 'none', '--text-epochs', 1, '--image-epochs', 1, '--joint-epochs', 1,
        '--batch-size', 2, '--device', 'cpu', '--no-progress', '--model', 'num_sentences=2', '--model', 'tokens_per_sentence=4']
DARK = range(40, 60)  # carphone's frames blacked out in the covered copy


def write_mp4(path: Path, frames: np.ndarray, rate=Fraction(30000, 1001)) -> Path:
    "uint8 RGB `[N, H, W, 3]` (even sides) as an H.264 mp4 at `rate` (the package's own writer)."
    return write_video(path, frames, rate)


def face_clip(label: int, seed: int, n: int = 16) -> np.ndarray:
    "A synthetic cartoon face (`render_clip`, 64 px) in a 128 px frame: the Haar cascade finds a face that fills the frame badly."
    from a3lign_nb.data.synth import render_clip
    return np.pad(render_clip(label, n, size=64, rng=seed), ((0, 0), (32, 32), (32, 32), (0, 0)), mode='edge')


def one_line_error(r, *names):
    "Exit code 2 and one stderr line `a3lign <cmd>: error: ...` naming each of `names` (besides one-line warnings), no traceback."
    lines = [l for l in r.stderr.splitlines() if l.strip() and ': warning: ' not in l]
    assert r.returncode == 2 and len(lines) == 1 and ': error: ' in lines[0] and 'Traceback' not in r.stderr, r
    for n in names: assert str(n) in lines[0], (n, lines[0])
    return lines[0]


@pytest.fixture(scope='module')
def carphone(tmp_path_factory):
    "carphone, a copy with frames 40-59 blacked out (a hand over the lens), their frames and timestamps."
    from a3lign_nb.data.faces import read_video, sample_face_video
    d = tmp_path_factory.mktemp('carphone')
    frames, times, fps = read_video(sample_face_video())
    shutil.copy(sample_face_video(), d/'carphone.mp4')
    dark = frames.copy(); dark[DARK.start:DARK.stop] = 0
    write_mp4(d/'carphone_dark.mp4', dark)
    (d/'labels.csv').write_text('video,label\ncarphone.mp4,neutral\ncarphone_dark.mp4,happiness\n')
    return dict(dir=d, frames=frames, times=times, fps=fps)


def check_rows(res: dict, times: np.ndarray, fps: float):
    "One row per window, in order; its times within one frame of the video's own timestamps; probabilities only with a face."
    rows = res['rows']
    assert [r['window'] for r in rows] == list(range(len(rows))) and rows[0]['first_frame'] == 0
    assert rows[-1]['last_frame'] == len(times) - 1  # the windows reach the end of the video
    for r in rows:
        assert abs(r['start'] - times[r['first_frame']]) < 1 / fps
        assert abs(r['end'] - (times[r['last_frame']] + 1 / fps)) < 1 / fps
        assert (r['probs'] is None) == (not r['has_face']) == (r['status'] == 'no_face')
        if r['has_face']: assert abs(sum(r['probs'].values()) - 1) < 1e-4 and r['top_class'] in res['classes']


def test_carphone_end_to_end(carphone, tmp_path):
    "The real face video through every command: prepare (CSV labels), check, extract, train, eval, export, predict."
    d = carphone['dir']
    out = run_cli('prepare', d/'carphone.mp4', d/'carphone_dark.mp4', '--out', tmp_path/'prep', '--labels', d/'labels.csv',
                  '--no-progress').stdout
    assert 'carphone_dark' in out and '83%' in out and 'haarcascade_frontalface_default.xml' in out
    rep = json.loads((tmp_path/'prep'/'report.json').read_text())
    assert rep['counts'] == dict(videos=2, prepared=2, reused=0, skipped=0)
    assert [(v['frames'], v['missing'], v['switches']) for v in rep['videos']] == [(120, 0, 0), (120, 20, 0)]
    assert (tmp_path/'prep'/'videos.txt').read_text() == 'frames/carphone 120 2\nframes/carphone_dark 120 0\n'
    assert len(list((tmp_path/'prep'/'frames'/'carphone').glob('*.jpg'))) == 120
    assert 'no problems' in run_cli('check', tmp_path/'prep'/'videos.txt', '--dataset', 'dfew').stdout
    lists = ['--train-list', tmp_path/'prep'/'videos.txt', '--test-list', tmp_path/'prep'/'videos.txt', '--dataset', 'dfew']
    run_cli('extract', *lists, *TINY, '--out-dir', tmp_path/'run')
    assert 'UAR' in run_cli('train', *lists, *TINY, '--out-dir', tmp_path/'run').stdout
    assert 'UAR' in run_cli('eval', tmp_path/'run', '--device', 'cpu', '--no-progress').stdout
    assert 'model.safetensors' in run_cli('export', tmp_path/'run', tmp_path/'model').stdout
    assert sorted(p.name for p in (tmp_path/'model').iterdir()) == ['README.md', 'config.json', 'model.safetensors']
    out = run_cli('predict', d/'carphone.mp4', d/'carphone_dark.mp4', '--run', tmp_path/'model', '--out', tmp_path/'pred',
                  '--device', 'cpu', '--no-progress').stdout
    assert out.count('windows of 0.53 s every 0.27 s') == 2 and 'top class' in out
    res, dark = (json.loads((tmp_path/'pred'/f'{n}.json').read_text()) for n in ('carphone', 'carphone_dark'))
    for r in (res, dark): check_rows(r, carphone['times'], carphone['fps'])
    assert len(res['rows']) == 14 and res['summary']['no_face_windows'] == 0 and res['cuts'] == []
    assert dark['cuts'] == [DARK.start, DARK.stop]  # to black and back: two cuts, and no window across either
    assert not any(r['first_frame'] < c <= r['last_frame'] for r in dark['rows'] for c in dark['cuts'])
    for r in dark['rows']:  # the covered stretch: no-face rows there, scored rows elsewhere, none missing
        frames = set(range(r['first_frame'], r['last_frame'] + 1))
        if frames <= set(DARK): assert not r['has_face'], r
        if not frames & set(DARK): assert r['has_face'], r
    assert dark['summary']['no_face_windows'] >= 1
    csv = (tmp_path/'pred'/'carphone_dark.csv').read_text().splitlines()
    assert len(csv) == 1 + len(dark['rows']) and any(l.endswith(',' * 7) and ',no_face,' in l for l in csv)
    html = (tmp_path/'pred'/'carphone_dark.html').read_text()
    assert len(html) > 3_000_000 and not re.findall(r'<script[^>]*\bsrc=', html)  # plotly.js inside: opens offline
    # the run folder and the exported model folder give the same predictions
    run_cli('predict', d/'carphone_dark.mp4', '--run', tmp_path/'run', '--out', tmp_path/'pred_run', '--device', 'cpu',
            '--no-progress', '--no-html')
    again = json.loads((tmp_path/'pred_run'/'carphone_dark.json').read_text())
    assert [r['probs'] for r in again['rows']] == [r['probs'] for r in dark['rows']]


def test_synthetic_faces_end_to_end(tmp_path):
    "Synthetic cartoon faces in class-named folders through every command, and a prepare rerun that keeps what is done."
    seeds = {'happiness': (1, 2, 3), 'sadness': (1000, 1001, 1002)}  # identities the Haar cascade finds in every frame
    for cls, ss in seeds.items():
        for s in ss: write_video(tmp_path/'videos'/cls/f'{cls}_{s}.mp4', face_clip(0 if cls == 'happiness' else 1, s))
    run_cli('prepare', tmp_path/'videos', '--out', tmp_path/'prep', '--labels', 'folders', '--dataset', 'synthetic', '--no-progress')
    rep = json.loads((tmp_path/'prep'/'report.json').read_text())
    assert rep['counts']['prepared'] == 6 and all(v['coverage'] >= 0.9 for v in rep['videos']), rep['videos']
    lines = (tmp_path/'prep'/'videos.txt').read_text().splitlines()
    assert sorted(l.split()[-1] for l in lines) == ['0'] * 3 + ['1'] * 3
    assert 'no problems' in run_cli('check', tmp_path/'prep'/'videos.txt', '--dataset', 'synthetic').stdout
    # a rerun keeps every finished folder; a folder whose done-marker is gone (a crash before the rename) is redone
    (tmp_path/'prep'/'frames'/'sadness_1000'/'face_track.json').unlink()
    (tmp_path/'prep'/'frames'/'.happiness_1.x.tmp').mkdir()  # left behind by an interrupted run
    run_cli('prepare', tmp_path/'videos', '--out', tmp_path/'prep', '--labels', 'folders', '--dataset', 'synthetic', '--no-progress')
    rep = json.loads((tmp_path/'prep'/'report.json').read_text())
    assert {v['name']: v['status'] for v in rep['videos'] if v['status'] == 'prepared'} == {'sadness_1000': 'prepared'}
    assert rep['counts']['reused'] == 5 and not list((tmp_path/'prep'/'frames').glob('.*'))
    assert (tmp_path/'prep'/'videos.txt').read_text().splitlines() == lines
    lists = ['--train-list', tmp_path/'prep'/'videos.txt', '--test-list', tmp_path/'prep'/'videos.txt', '--dataset', 'synthetic']
    run_cli('extract', *lists, *TINY, '--out-dir', tmp_path/'run')
    run_cli('train', *lists, *TINY, '--out-dir', tmp_path/'run')
    run_cli('eval', tmp_path/'run', '--device', 'cpu', '--no-progress')
    run_cli('export', tmp_path/'run', tmp_path/'model')
    v = tmp_path/'videos'/'happiness'/'happiness_1.mp4'
    out = run_cli('predict', v, '--run', tmp_path/'model', '--out', tmp_path/'pred', '--window', '0.32', '--stride', '0.16',
                  '--device', 'cpu', '--no-progress', '--no-html').stdout
    assert 'happiness_1.mp4: 3 windows of 0.32 s every 0.16 s, 0 without a face' in out
    from a3lign_nb.data.faces import read_video
    _, times, fps = read_video(v)
    check_rows(json.loads((tmp_path/'pred'/'happiness_1.json').read_text()), times, fps)


def test_prepare_counts_bad_files_and_goes_on(tmp_path, monkeypatch):
    "A zero-byte file, text named .mp4, a video without a face, an unreadable folder: each a named, counted skip."
    d = tmp_path/'videos'
    write_video(d/'good.mp4', face_clip(1, 1000))
    (d/'empty.mp4').touch()
    (d/'notes.mp4').write_text('not a video, only a name that says so')
    write_video(d/'noise.mp4', np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8))
    (d/'locked').mkdir(); write_video(d/'locked'/'hidden_from_us.mp4', face_clip(1, 1000))
    real_scandir = os.scandir
    def scandir(path='.'):  # the folder cannot be listed (chmod 000 does not stop root, so the refusal is simulated)
        if Path(path) == d/'locked': raise PermissionError(13, 'Permission denied', str(path))
        return real_scandir(path)
    monkeypatch.setattr(os, 'scandir', scandir)
    r = run_cli('prepare', d, '--out', tmp_path/'prep', '--no-progress')
    warns = [l for l in r.stderr.splitlines() if 'warning: skipping' in l]
    assert len(warns) == 4 and all(l.startswith('a3lign prepare: warning: skipping ') for l in warns), r
    assert 'empty.mp4: zero-byte video file' in r.stderr and 'notes.mp4: PyAV cannot open it' in r.stderr
    assert 'noise.mp4: no face found in any of its 12 frames' in r.stderr
    rep = json.loads((tmp_path/'prep'/'report.json').read_text())
    assert rep['counts'] == dict(videos=1, prepared=1, reused=0, skipped=4) and not rep['labelled']
    assert {Path(s['source']).name for s in rep['skipped']} == {'empty.mp4', 'notes.mp4', 'noise.mp4', 'locked'}
    assert 'cannot read this folder' in next(s['reason'] for s in rep['skipped'] if s['source'].endswith('locked'))
    assert (tmp_path/'prep'/'videos.txt').read_text() == 'frames/good 16 0\n' and 'placeholder label 0' in r.stdout
    # nothing to prepare at all, or a bad label file: one line, exit code 2
    one_line_error(run_cli('prepare', d/'notes.mp4', '--out', tmp_path/'p2', '--no-progress', check=False), 'no video could be prepared')
    (tmp_path/'bad.csv').write_text('video,label\ngood.mp4,joy\n')
    one_line_error(run_cli('prepare', d, '--out', tmp_path/'p3', '--labels', tmp_path/'bad.csv', check=False), 'bad.csv:2', "'joy'")
    one_line_error(run_cli('prepare', d, '--out', tmp_path/'p4', '--detector', 'retinaface', check=False), "unknown face detector 'retinaface'")


@pytest.fixture(scope='module')
def model_folder(tmp_path_factory, trained_run):
    "The session's tiny trained run, exported."
    out = tmp_path_factory.mktemp('model')/'m'
    run_cli('export', trained_run, out)
    return out


def test_predict_bad_input_is_one_line(carphone, model_folder, tmp_path):
    "Bad videos and bad model folders: exit code 2 and one line naming the file."
    (tmp_path/'empty.mp4').touch()
    (tmp_path/'notes.mp4').write_text('not a video')
    write_video(tmp_path/'noise.mp4', np.random.default_rng(0).integers(0, 256, (12, 64, 64, 3), dtype=np.uint8))
    good = carphone['dir']/'carphone.mp4'
    predict = lambda *v, run=model_folder: run_cli('predict', *v, '--run', run, '--out', tmp_path/'pred', '--device', 'cpu',
                                                   '--no-progress', check=False)
    one_line_error(predict(good, tmp_path/'empty.mp4'), 'empty.mp4: zero-byte video file')
    one_line_error(predict(tmp_path/'notes.mp4'), 'notes.mp4: PyAV cannot open it')
    one_line_error(predict(tmp_path/'noise.mp4'), 'noise.mp4: no face found')
    assert not (tmp_path/'pred').exists()  # every video is checked before any work
    def broken(name, fn):
        b = tmp_path/name; shutil.copytree(model_folder, b); fn(b); return b
    gone = broken('no-weights', lambda b: (b/'model.safetensors').unlink())
    one_line_error(predict(good, run=gone), gone/'model.safetensors', 'missing')
    pickled = broken('pickled', lambda b: (b/'model.safetensors').rename(b/'model.bin'))
    one_line_error(predict(good, run=pickled), pickled/'model.bin', 'pickled weights are never loaded')
    import torch
    renamed = broken('renamed', lambda b: torch.save({'x': torch.zeros(2)}, b/'model.safetensors'))
    one_line_error(predict(good, run=renamed), renamed/'model.safetensors', 'not a safetensors file')
    def future(b):
        doc = json.loads((b/'config.json').read_text()); doc['format_version'] = 99; (b/'config.json').write_text(json.dumps(doc))
    v99 = broken('future', future)
    one_line_error(predict(good, run=v99), v99/'config.json', 'format version 99')
    one_line_error(predict(good, run=tmp_path/'nothing'), 'nothing: no such run folder, checkpoint file or model folder')
    one_line_error(predict(good, run='hf-hub:nobody/nothing'), 'hf-hub:nobody/nothing: not in the local Hugging Face cache')


def test_export_refuses_and_info_names_the_detector(trained_run, model_folder, tmp_path):
    one_line_error(run_cli('export', tmp_path/'no_run', tmp_path/'m', check=False), 'no_run: not a run folder')
    one_line_error(run_cli('export', trained_run, model_folder, check=False), 'already exists: pass --overwrite')
    doc = json.loads((model_folder/'config.json').read_text())
    assert doc['format'] == 'a3lign-model' and doc['train']['train_list'] is None and doc['source']['train_list'] == 'train.txt'
    card = (model_folder/'README.md').read_text()
    assert 'random' in card and 'a3lign-tiny' in card and 'UAR' in card
    info = run_cli('info').stdout
    assert 'face_detector:' in info and 'default: haar' in info and 'haarcascade_frontalface_default.xml' in info


@pytest.fixture(scope='module')
def interview(tmp_path_factory):
    "The two-person, six-shot test video (notebook 13), upright and stored sideways with a display matrix, and its truth."
    from a3lign_nb.data.faces import interview_video
    d = tmp_path_factory.mktemp('interview')
    up, truth = interview_video(d/'interview.mp4')
    side, _ = interview_video(d/'sideways.mp4', rotation=90)
    return dict(dir=d, up=up, side=side, truth=truth)


def test_two_people_and_cuts_through_the_commands(interview, model_folder, tmp_path):
    """prepare --faces all (a folder per track, each inside a shot, the list checks clean); predict: a row per face and
    window, no window across a cut, both people in the shared shot; the sideways copy predicts the same rows."""
    cuts = interview['truth']['cuts']
    out = run_cli('prepare', interview['up'], '--out', tmp_path/'main', '--no-progress').stdout
    assert 'interview: also face 1' in out  # the main face's folder names the other person
    run_cli('prepare', interview['up'], '--out', tmp_path/'all', '--faces', 'all', '--no-progress')
    rep = json.loads((tmp_path/'all'/'report.json').read_text())
    assert len(rep['videos']) >= 6 and {v['face'] for v in rep['videos']} == {0, 1}
    assert not any(v['first_frame'] < c < v['first_frame'] + v['frames'] for v in rep['videos'] for c in cuts)
    assert 'no problems' in run_cli('check', tmp_path/'all'/'videos.txt', '--dataset', 'dfew').stdout
    run_cli('predict', interview['up'], interview['side'], '--run', model_folder, '--out', tmp_path/'pred', '--device', 'cpu',
            '--no-progress', '--no-html')
    up, side = (json.loads((tmp_path/'pred'/f'{n}.json').read_text()) for n in ('interview', 'sideways'))
    assert up['cuts'] == cuts and side['rotation'] == 90
    assert not any(r['first_frame'] < c <= r['last_frame'] for r in up['rows'] for c in cuts)
    a, b = cuts[2], cuts[3]  # the shot with both people
    assert {r['face'] for r in up['rows'] if a <= r['first_frame'] < b and r['has_face']} == {0, 1}
    key = lambda res: [(r['span'], r['face'], r['has_face']) for r in res['rows']]
    assert key(up) == key(side)
    csv = (tmp_path/'pred'/'interview.csv').read_text().splitlines()
    assert ',face,shot,span,x0,y0,x1,y1,' in csv[0] and len(csv) == 1 + len(up['rows'])


def test_stills_and_gifs(model_folder, tmp_path):
    "A still image (even named .mp4) is refused in one line by predict and is a counted skip in prepare; an animated GIF is a video."
    import av
    import cv2
    from a3lign_nb.data.faces import sample_face_image
    ok, jpg = cv2.imencode('.jpg', sample_face_image()[..., ::-1])
    (tmp_path/'photo.mp4').write_bytes(jpg.tobytes())
    one_line_error(run_cli('predict', tmp_path/'photo.mp4', '--run', model_folder, '--out', tmp_path/'pred', '--device', 'cpu',
                           '--no-progress', check=False), 'photo.mp4: a still image (JPEG), not a video')
    face = cv2.resize(sample_face_image()[40:300, 110:340], (128, 144))
    with av.open(str(tmp_path/'moving.gif'), 'w') as c:
        s = c.add_stream('gif', rate=10); s.width, s.height, s.pix_fmt = 128, 144, 'rgb8'
        for i in range(12):
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(np.roll(face, i, 1)), format='rgb24')): c.mux(p)
        for p in s.encode(): c.mux(p)
    r = run_cli('prepare', tmp_path/'photo.mp4', tmp_path/'moving.gif', '--out', tmp_path/'prep', '--no-progress')
    assert 'photo.mp4: a still image (JPEG), not a video' in r.stderr  # a one-line warning, counted below
    rep = json.loads((tmp_path/'prep'/'report.json').read_text())
    assert rep['counts'] == dict(videos=1, prepared=1, reused=0, skipped=1) and rep['videos'][0]['frames'] == 12
