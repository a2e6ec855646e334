"Two processes under torchrun on CPU (gloo): sharded extraction and data-parallel training through the BAP stages."
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two torchrun launches: a CI step of their own (`pytest tests --slow -m slow`)

from conftest import make_clips


def test_torchrun_two_processes_cpu(tmp_path):
    torchrun = shutil.which('torchrun') or str(Path(sys.executable).parent/'torchrun')
    if not Path(torchrun).exists(): pytest.skip('torchrun not found')
    data = make_clips(tmp_path/'d', n_per_class=3)
    cmd = [torchrun, '--standalone', '--nproc_per_node', '2', '-m', 'a3lign_nb.cli', 'train',
           '--train-list', data/'train.txt', '--test-list', data/'test.txt', '--backbone', 'a3lign-tiny', '--pretrained', 'none',
           '--text-epochs', 1, '--image-epochs', 1, '--joint-epochs', 1, '--batch-size', 2, '--device', 'cpu',
           '--no-progress', '--max-frames', 16, '--shard-size', 3, '--out-dir', tmp_path/'run', '--cache-dir', tmp_path/'cache',
           '--model', 'num_sentences=2', '--model', 'tokens_per_sentence=4']
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=600,
                       env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'})
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    man = json.loads((tmp_path/'cache'/'manifest.json').read_text())
    assert man['complete'] and man['built']['world_size'] == 2 and man['dataset']['num_clips'] == 12
    log = [json.loads(l) for l in (tmp_path/'run'/'log.jsonl').read_text().splitlines()]
    assert [r['stage'] for r in log] == ['text', 'image', 'joint']
    ev = json.loads((tmp_path/'run'/'eval.json').read_text())
    assert ev['num_clips'] == 6            # every test clip scored exactly once (gathered, not padded)
    assert sorted(p.name for p in (tmp_path/'run'/'checkpoints').glob('*.json')) == ['epoch_001.json', 'epoch_002.json', 'epoch_003.json']
    assert p.stdout.count('UAR') == 1      # rank 0 prints the result once


SCRIPT = '''
import sys, os, signal
sys.path.insert(0, {tests!r})
from a3lign_nb import pipelines
from a3lign_nb.train import checkpoint, loop
from a3lign_nb.dist import dist_info
from conftest import tiny_cfg
from pathlib import Path
def hook(epoch, step, batch):  # Ctrl-C reaches rank 1 only
    if dist_info()[0] == 1 and epoch == 1 and step == 0: os.kill(os.getpid(), signal.SIGINT)
try: pipelines.train(tiny_cfg(Path({data!r}), Path({out!r}), cache_dir={cache!r}, overwrite={overwrite}), batch_hook=hook)
except KeyboardInterrupt: print('INTERRUPTED rank', dist_info()[0], flush=True)
'''


def test_ctrl_c_on_one_rank_stops_every_rank(tmp_path):
    "A SIGINT to one rank travels in the per-step all-reduce: both ranks stop at the same step, none hangs."
    torchrun = shutil.which('torchrun') or str(Path(sys.executable).parent/'torchrun')
    if not Path(torchrun).exists(): pytest.skip('torchrun not found')
    data = make_clips(tmp_path/'d', n_per_class=3)
    for overwrite in (False, True):   # the second run also takes the --overwrite path (rank 0 deletes, then a barrier)
        script = tmp_path/'run.py'
        script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), data=str(data), out=str(tmp_path/'run'),
                                        cache=str(tmp_path/'cache'), overwrite=overwrite))
        p = subprocess.run([torchrun, '--standalone', '--nproc_per_node', '2', str(script)], capture_output=True, text=True,
                           timeout=300, env={**__import__('os').environ, 'OMP_NUM_THREADS': '1'})
        assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
        assert 'INTERRUPTED rank 0' in p.stdout and 'INTERRUPTED rank 1' in p.stdout, p.stdout[-3000:] + p.stderr[-3000:]
        assert sorted(q.name for q in (tmp_path/'run'/'checkpoints').glob('*.json')) == ['epoch_001.json']
