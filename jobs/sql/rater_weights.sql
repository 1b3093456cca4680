-- query: Meta-rater's learned signal weights w* (the fit), with the fit's held-out Spearman
select signal, round(weight, 4) as weight, round(heldout_spearman, 4) as heldout_spearman,
       n_proposals, n_candidates, n_best, round(predicted_loss, 4) as predicted_loss, run_id
from gold.rater_weights
where weights_id = 'final'
order by weight desc, signal
