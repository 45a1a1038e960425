"""Quick start: the published sample into a Zarr store, opened lazily, with synthetic imagettes beside it."""

import xwvnet

sample = xwvnet.datasets.wvnet_sample()
ds = xwvnet.open_quicklooks(sample["quicklooks"], labels=sample["labels"])
print(xwvnet.to_store(ds, "quickstart.zarr").summary())
ds = xwvnet.open_store("quickstart.zarr")
print(ds)
synth = xwvnet.synthetic.imagettes(100, seed=0)
print(synth[["hs", "wind_speed"]].to_dataframe().describe())
