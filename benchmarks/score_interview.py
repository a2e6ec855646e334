"""The issue-23 figures on the two-person, six-shot test video (`a3lign_nb.data.faces.interview_video`), upright and stored
sideways with a display matrix: face coverage, cuts found vs true, tracks and windows across a cut, person linking,
the two-person shot, and the sideways copy's tracks against the upright ones.

    OMP_NUM_THREADS=1 python benchmarks/score_interview.py [--detect-fps 8] [--full-fps 1]

Linking is scored per track: its true person is the shot's one person, or in the shot with both, the one on its side
of the frame's middle; a track is right when it carries the id that most of its true person's frames carry.

Measured (defaults, December 2026): face in 98.2% of the 170 frames (every frame shows one), cuts [30, 55, 85, 115, 140]
found exactly, 7 tracks, 0 across a cut, 0 windows across a cut, 7 of 7 tracks linked to the right person (2 people),
both people in 100% of the two-person shot; sideways copy (rotation 90): the same 7 tracks and people, the same face
frames, box IoU per person mean 0.951 / 0.965, 98-99% of frames at 0.9 or more, min 0.865 / 0.933. The few frames
under 0.9 are the Haar cascade's jitter on slightly different pixels (the sideways file is another encode, and its
chroma is upsampled along the other axis), not the rotation: a lossless (crf 0) pair gives the same spread.
"""
import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from a3lign_nb.data.faces import box_iou, face_tracks, interview_video, shot_spans


def score(vf, truth) -> dict:
    n, shots, W = truth['frames'], shot_spans(truth['cuts'], truth['frames']), truth['size'][1]
    any_face = np.logical_or.reduce([f.has_face for f in vf.faces])
    pairs = []  # (found id, true person, detected frames) per track
    for t in vf.tracks:
        s = next(i for i, (a, b) in enumerate(shots) if a <= t['first'] < b)
        f, people = vf.face(t['face']), truth['shots'][s]
        cx = np.nanmedian(f.raw_boxes[t['first']:t['last'] + 1, [0, 2]].mean(1))
        pairs.append((t['face'], people[int(cx > W / 2)] if len(people) == 2 else people[0], t['detected']))
    votes = {}
    for a, b, w in pairs: votes.setdefault(b, {}).setdefault(a, 0); votes[b][a] += w
    main = {b: max(v, key=v.get) for b, v in votes.items()}
    a, b = shots[[i for i, p in enumerate(truth['shots']) if len(p) == 2][0]]
    return dict(frames=n, face_coverage=round(float(any_face.mean()), 4), cuts_found=vf.cuts.tolist(), cuts_true=truth['cuts'],
                tracks=len(vf.tracks), people=len(vf.faces),
                tracks_across_cuts=sum(any(t['first'] < c <= t['last'] for c in truth['cuts']) for t in vf.tracks),
                linking_correct=f"{sum(main[b] == a for a, b, _ in pairs)} of {len(pairs)} tracks",
                two_person_shot={f'face {f.face}': round(float(f.has_face[a:b].mean()), 3) for f in vf.faces})


def sideways(vf, vr) -> dict:
    out = dict(rotation=vr.rotation, same_tracks=[(t['first'], t['last'], t['face']) for t in vf.tracks] ==
               [(t['first'], t['last'], t['face']) for t in vr.tracks])
    for f in vf.faces:
        g = vr.face(f.face); both = f.has_face & g.has_face
        iou = np.diag(box_iou(f.boxes[both], g.boxes[both]))
        out[f'face {f.face}'] = dict(same_frames=round(float((f.has_face == g.has_face).mean()), 3),
                                     iou_mean=round(float(iou.mean()), 3), iou_min=round(float(iou.min()), 3),
                                     frames_iou_90=round(float((iou >= 0.9).mean()), 3))
    return out


def windows_across_cuts(video) -> int:
    from a3lign_nb.explore.tokens import shipped_run
    from a3lign_nb.predict import predict_video
    res = predict_video(video, shipped_run())
    return sum(any(r['first_frame'] < c <= r['last_frame'] for c in res['cuts']) for r in res['rows'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--detect-fps', type=float, default=8.0, help='detections per second (0: every frame)')
    ap.add_argument('--full-fps', type=float, default=1.0, help='whole-frame detections per second (0: all)')
    a = ap.parse_args()
    d = Path(tempfile.mkdtemp(prefix='score_interview_'))
    up, truth = interview_video(d/'interview.mp4')
    side, _ = interview_video(d/'sideways.mp4', rotation=90)
    kw = dict(detect_fps=a.detect_fps or None, full_fps=a.full_fps or None)
    vf, vr = face_tracks(up, **kw), face_tracks(side, **kw)
    for k, v in dict(upright=score(vf, truth), windows_across_cuts=windows_across_cuts(up), sideways=sideways(vf, vr)).items():
        print(f'{k}: {json.dumps(v)}')


if __name__ == '__main__': main()
