# Least-squares regression of the planted latents on the customers.csv / items.csv attributes:
# writes truth/customer_latent_obs.f32 and truth/item_latent_obs.f32 (the eval diagnostic reads
# the items one; the generator writes the exact customer part, customer_latent_observable.f32).
import numpy as np, pandas as pd, sys
d=sys.argv[1]
cu=pd.read_csv(d+'/customers.csv', dtype=str, keep_default_na=False)
n=len(cu)
cols=[]
age=cu.age.astype(float).values
cols += [age/50, (age/50)**2]
band=np.digitize(age,[25,35,50,60])
def onehot(v):
    u=sorted(set(v)); return [ (np.array(v)==x).astype(float) for x in u]
cols += onehot(list(band)) + onehot(list(cu.gender)) + onehot(list(cu.tier))
cols += [np.log1p(cu.income.astype(float).values), np.log1p(cu.aum.astype(float).values)]
cols += onehot(list(cu.risk_level)) + onehot(list(cu.life_stage)) + onehot(list(cu.occupation)) + onehot(list(cu.region))
tags=sorted({t for s in cu.tags for t in s.split(';') if t})
for t in tags: cols.append(np.array([t in s.split(';') for s in cu.tags],float))
X=np.column_stack(cols+[np.ones(n)])
CL=np.fromfile(d+'/truth/customer_latent.f32',np.float32).reshape(n,-1)
B,res,rk,sv=np.linalg.lstsq(X,CL,rcond=None)
P=X@B
print('customer R2 per dim', np.round(1-((CL-P)**2).sum(0)/((CL-CL.mean(0))**2).sum(0),3))
P.astype(np.float32).tofile(d+'/truth/customer_latent_obs.f32')
it=pd.read_csv(d+'/items.csv', dtype=str, keep_default_na=False)
m=len(it)
cols=onehot(list(it.category))+onehot(list(it.risk_level))
tg=sorted({t for s in it.tags for t in s.split(';') if t})
for t in tg: cols.append(np.array([t in s.split(';') for s in it.tags],float))
X=np.column_stack(cols+[np.ones(m)])
IL=np.fromfile(d+'/truth/item_latent.f32',np.float32).reshape(m,-1)
B,*_=np.linalg.lstsq(X,IL,rcond=None)
P=X@B
print('item R2 per dim', np.round(1-((IL-P)**2).sum(0)/((IL-IL.mean(0))**2).sum(0),3))
P.astype(np.float32).tofile(d+'/truth/item_latent_obs.f32')
