// Lists training jobs (admin API) with their state, progress and plots; refreshes every 3 s.
const $ = (id) => document.getElementById(id);
const tokenInput = $('token');
tokenInput.value = localStorage.getItem('prs-admin-token') ?? '';
const headers = () => ({ authorization: `Bearer ${tokenInput.value}` });
const plotUrls = new Map();

async function plot(id, name) {
  const r = await fetch(`/admin/v1/training/jobs/${id}/plots/${name}`, { headers: headers() });
  if (!r.ok) return undefined;
  const url = URL.createObjectURL(await r.blob());
  const old = plotUrls.get(`${id}/${name}`);
  if (old) URL.revokeObjectURL(old);
  plotUrls.set(`${id}/${name}`, url);
  return url;
}

async function refresh() {
  localStorage.setItem('prs-admin-token', tokenInput.value);
  const r = await fetch('/admin/v1/training/jobs', { headers: headers() });
  if (!r.ok) {
    $('status').textContent = r.status === 404 ? 'Admin routes are off: start the server with --admin-token.' : `Error ${r.status}: check the admin token.`;
    return;
  }
  const { data } = await r.json();
  $('status').textContent = `${data.length} job(s)`;
  const list = $('jobs');
  list.replaceChildren();
  for (const job of data) {
    const el = document.createElement('div');
    el.className = 'job';
    const eta = job.eta_s !== undefined ? `, ETA ${job.eta_s} s` : '';
    const m = job.metrics ?? {};
    const summary = ['loss', 'reward', 'accuracy', 'rapr'].filter((k) => m[k] !== undefined).map((k) => `${k} ${Number(m[k]).toFixed(3)}`).join(', ');
    el.innerHTML = `<h2>${job.id} <small>${job.type}</small> <span class="state-${job.state}">${job.state}</span></h2>
      <div>step ${job.step}/${job.total_steps} (${Math.round(100 * job.progress)}%${eta}) ${summary}</div>
      <div>model: <code>${job.model ?? ''}</code>${job.error ? ` error: ${job.error}` : ''}</div><div class="plots"></div>`;
    list.append(el);
    for (const name of job.type === 'rl' ? ['rewards.svg', 'loss.svg'] : ['loss.svg']) {
      const url = await plot(job.id, name);
      if (!url) continue;
      const img = document.createElement('img');
      img.src = url;
      img.alt = `${job.id} ${name}`;
      el.querySelector('.plots').append(img);
    }
  }
}

$('refresh').addEventListener('click', refresh);
void refresh();
setInterval(refresh, 3000);
