"""Python LightGBM on the files `lightgbm_fit write` made, with the
parameters `lightgbm_fit time` wrote: dataset and boosting seconds."""
import sys
import time

import lightgbm as lgb
import numpy as np

folder, rounds = sys.argv[1], int(sys.argv[2])
width = int(open(f"{folder}/width").read())
x = np.fromfile(f"{folder}/x.f64", dtype="<f8").reshape(-1, width)
y = np.fromfile(f"{folder}/y.u8", dtype=np.uint8).astype(np.float32)

def typed(text):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text.strip('"'))


params = dict(pair.split("=", 1) for pair in open(f"{folder}/params.txt").read().split())
params = {key: typed(value) for key, value in params.items()}
t = time.perf_counter()
data = lgb.Dataset(x, label=y, params={"verbosity": -1}, free_raw_data=False).construct()
dataset = time.perf_counter() - t
t = time.perf_counter()
model = lgb.train(params, data, num_boost_round=rounds)
train = time.perf_counter() - t
print(f"python dataset {dataset:.3f} train {train:.3f} rounds {model.current_iteration()} (lightgbm {lgb.__version__})")
